"""The built-in models and what they are made from: `tiny-random` and `tiny-shapes` (`builtin_models`), the synthetic
shape and flash clips they learn from, the tiny VAEs and pipeline builders, the recipe that trains `tiny-shapes`
(`train_tiny_shapes`) and the benchmarks that measure it (`run_shapes_benchmark`).

Nothing in the library depends on this package; it depends on the library (models, pipelines, `training`,
`evaluation`) like a user's own project would.
"""
