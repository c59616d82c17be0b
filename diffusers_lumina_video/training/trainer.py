"""Training of the Lumina-Video transformer on accelerate: a LoRA on the frozen model, or every weight (full).

accelerate owns devices, precision and processes (DDP, or FSDP from an accelerate config: each process then holds a
shard of every weight, and what is saved or rendered is gathered first); the loss is
`recipe.flow_matching_loss`; the data comes from the cache `prepare.py` writes. A run writes into `output_dir`:

    checkpoints/checkpoint-N/    LoRA (or the transformer, sharded under FSDP, and its moving average), optimizer,
                                 scheduler and RNG states (`accelerator.save_state`), resumable
    logs/loss.csv, logs/loss.png the loss per step (the plot when matplotlib is installed); tensorboard events
    validation/step-N-I.mp4      validation videos, same seed at every step
    LoRA mode: pytorch_lora_weights.safetensors, README.md   the LoRA (`load_lora_weights` format), its model card
    full mode: pipeline/         a complete pipeline folder (the moving average of the weights as its transformer)
                                 with its model card, which `DiffusionPipeline.from_pretrained` loads
"""

import contextlib
import json
import logging
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState, init_empty_weights
from accelerate.utils import DistributedType, ProjectConfiguration, broadcast_object_list, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import cast_training_params
from peft import LoraConfig, set_peft_model_state_dict
from peft.utils import get_peft_model_state_dict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..loaders.lora_pipeline import (
    LUMINA_VIDEO_LORA_TARGET_MODULES,
    LuminaVideoLoraLoaderMixin,
    check_lora_target_modules,
)
from ..model_card import create_full_model_card, create_lora_model_card, create_v2a_model_card
from ..utils.atomic import (
    atomic_output_file,
    build_folder_atomically,
    remove_stale_temporaries,
    replace_folder,
    restore_set_aside_folders,
)
from .batches import unbatched
from .checkpoints import (
    CHECKPOINT_PREFIX,
    LORA_WEIGHT_NAME,
    TRAINER_STATE_FILE,
    list_checkpoints,
    resolve_resume_path,
)
from .config import FULL_ONLY_SETTINGS, LORA_ONLY_SETTINGS, TrainingConfig
from .ema import ShardedEMAModel
from .families import DTYPES, V2AFamily, VideoFamily, encoder_dtype, has_marker, model_family
from .loss_log import LossLog
from .recipe import AudioTrainingBatch, TrainingBatch, flow_matching_loss, sample_generator


logger = logging.getLogger(__name__)

PIPELINE_FOLDER = "pipeline"
# Settings shown on the model card besides the family's own (those of the run's mode).
CARD_SETTINGS = (
    "model_family",
    "training_mode",
    "ema_decay",
    "freeze_shared_blocks",
    "rank",
    "lora_alpha",
    "target_modules",
    "learning_rate",
    "lr_scheduler",
    "max_train_steps",
    "train_batch_size",
    "gradient_accumulation_steps",
    "vd_weight",
    "mixed_precision",
    "seed",
)


@dataclass(frozen=True)
class ModelSettings:
    """What the config means for this transformer, resolved and checked before any weight is loaded."""

    target_modules: list[str]  # LoRA targets; empty in full mode
    lora_modules: list[str]  # the linear layers the targets wrap, by full name
    per_patch_trainables: bool  # a trained module only one patchification uses (its embedder or output head)


def resolve_model_settings(config: TrainingConfig, family: VideoFamily | V2AFamily) -> ModelSettings:
    """Checks the family's settings (e.g. patch sizes) and the LoRA targets against the transformer's config, on a
    weightless copy."""
    transformer_config = family.transformer_class.load_config(
        config.pretrained_model_name_or_path, subfolder="transformer", revision=config.revision
    )
    with init_empty_weights():
        transformer = family.transformer_class.from_config(transformer_config)
    per_patch_markers = family.check_transformer(transformer)
    if config.training_mode == "full":
        return ModelSettings([], [], per_patch_trainables=bool(per_patch_markers))

    target_modules = list(config.target_modules or LUMINA_VIDEO_LORA_TARGET_MODULES)
    check_lora_target_modules(transformer, target_modules)
    wrapped = [
        name
        for name, module in transformer.named_modules()
        if isinstance(module, nn.Linear) and any(name == t or name.endswith(f".{t}") for t in target_modules)
    ]
    per_patch = any(has_marker(name, per_patch_markers) for name in wrapped)
    return ModelSettings(target_modules, wrapped, per_patch)


def prepare_data(config: TrainingConfig) -> Path:
    """The `--prepare_only` step: checks the dataset and writes the cache, in one process."""
    config.validate()
    family = model_family(config)
    resolve_model_settings(config, family)
    state = PartialState()
    if state.num_processes > 1:
        raise RuntimeError("Prepare the data in a single process (without `accelerate launch --num_processes`).")
    return family.prepare(state.device, encoder_dtype(state.device, config.mixed_precision))


def train(config: TrainingConfig) -> Path:
    """Trains as `config` says; returns the saved LoRA file (LoRA mode) or pipeline folder (full mode)."""
    return Trainer(config).train()


class Trainer:
    """One training run. `train()` checks everything it can without weights, sets up accelerate, the data and the
    model, resumes if asked, then loops; each part is a method so it reads in order."""

    def __init__(self, config: TrainingConfig):
        self.config = config.validate()
        self.family = model_family(self.config)

    def _check_before_start(self) -> None:
        """Every check that needs no model weights: settings, data files, resume folder, Hub login."""
        config = self.config
        self.model_settings = resolve_model_settings(config, self.family)
        self.items = self.family.load_items()
        # A checkpoint or the pipeline folder set aside by a run killed while replacing it goes back first.
        restore_set_aside_folders(config.output_path)
        restore_set_aside_folders(config.output_path / "checkpoints")
        self.resume_path = resolve_resume_path(config, self.model_settings.lora_modules)
        if config.push_to_hub:
            from huggingface_hub import get_token

            if get_token() is None:
                raise RuntimeError("`push_to_hub` needs a Hub token: run `hf auth login` first.")

    def _setup_accelerator(self) -> None:
        config = self.config
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            log_with="tensorboard" if config.report_to == "tensorboard" else None,
            project_config=ProjectConfiguration(
                project_dir=str(config.output_path), logging_dir=str(config.output_path / "logs")
            ),
            # Each micro-batch runs one patchification; training one patchification's own modules leaves them
            # unused in the others, which DDP must be told about.
            kwargs_handlers=[
                DistributedDataParallelKwargs(find_unused_parameters=self.model_settings.per_patch_trainables)
            ],
        )
        self.weight_dtype = DTYPES.get(self.accelerator.mixed_precision, torch.float32)
        if self.accelerator.is_main_process:
            config.output_path.mkdir(parents=True, exist_ok=True)
            # Left by a killed run: checkpoint folders under construction (one name for all processes) and the
            # temporaries of every other output.
            for stale in (config.output_path / "checkpoints").glob(f".{CHECKPOINT_PREFIX}*.tmp"):
                shutil.rmtree(stale)
            remove_stale_temporaries(config.output_path, recursive=True)
            with atomic_output_file(config.output_path / "training_config.json") as staging:
                staging.write_text(json.dumps(config.to_dict(), indent=2))

    def _setup_data(self) -> None:
        self.family.setup_data(self.accelerator, self.items)

    def _setup_model(self) -> None:
        config, accelerator = self.config, self.accelerator
        set_seed(config.seed)
        full = config.training_mode == "full"
        transformer = self.family.transformer_class.from_pretrained(
            config.pretrained_model_name_or_path,
            subfolder="transformer",
            revision=config.revision,
            variant=config.variant,
            # Trained weights stay in float32 (autocast gives the speed); a frozen base may be in half precision.
            torch_dtype=torch.float32 if full else self.weight_dtype,
        )
        transformer.requires_grad_(full)
        self.family.check_compatible(transformer)
        if config.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        if not full:
            transformer.add_adapter(
                LoraConfig(
                    r=config.rank,
                    lora_alpha=config.lora_alpha or config.rank,
                    lora_dropout=config.lora_dropout,
                    init_lora_weights=True,
                    target_modules=self.model_settings.target_modules,
                )
            )
        self._freeze_untrained_patchifications(transformer)
        transformer.to(accelerator.device)
        cast_training_params(transformer, torch.float32)
        self.lora_metadata = None if full else transformer.peft_config["default"].to_dict()

        optimizer = torch.optim.AdamW(
            [p for p in transformer.parameters() if p.requires_grad],
            lr=config.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2),
            weight_decay=config.adam_weight_decay,
            eps=config.adam_epsilon,
        )
        # accelerate steps a prepared scheduler once per process per call; these counts keep the schedule in steps.
        lr_scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer,
            num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=config.max_train_steps * accelerator.num_processes,
        )
        self.transformer, self.optimizer, self.lr_scheduler = accelerator.prepare(transformer, optimizer, lr_scheduler)
        # After `prepare`: FSDP replaces every parameter by its shard (a DTensor).
        self.trainable = [p for p in self.transformer.parameters() if p.requires_grad]
        # The moving average of what this process holds (all weights under DDP, its shards under FSDP), checkpointed.
        self.ema = ShardedEMAModel(self.trainable, decay=config.ema_decay) if config.uses_ema else None
        if full:
            if self.ema is not None:
                accelerator.register_for_checkpointing(self.ema)  # saved as `EMA_STATE_NAME`
        else:
            accelerator.register_save_state_pre_hook(self._save_lora_hook)
            accelerator.register_load_state_pre_hook(self._load_lora_hook)

    def _freeze_untrained_patchifications(self, transformer: nn.Module) -> None:
        """The embedder and head of a patchification no micro-batch runs (or their LoRA) never get a gradient; they
        are frozen so that the optimizer and the moving average hold exactly the weights the run updates. FSDP's
        sharded optimizer checkpoint could not be resumed otherwise: its loader expects a state for every weight
        the optimizer was given. With `freeze_shared_blocks`, so is every weight the patchifications share."""
        shared_frozen = self.config.freeze_shared_blocks
        markers = list(self.family.patch_markers.values()) if shared_frozen else []
        for name, parameter in transformer.named_parameters():
            if has_marker(name, self.family.untrained_markers) or (shared_frozen and not has_marker(name, markers)):
                parameter.requires_grad_(False)

    def lora_layers(self) -> dict[str, torch.Tensor] | None:
        """The LoRA weights on the main process (None elsewhere); gathered from all processes under FSDP."""
        state_dict = self.accelerator.get_state_dict(self.transformer)
        if not self.accelerator.is_main_process:
            return None
        layers = get_peft_model_state_dict(self.accelerator.unwrap_model(self.transformer), state_dict=state_dict)
        return {name: tensor.detach().cpu().contiguous() for name, tensor in layers.items()}

    def _write_lora(self, layers: dict[str, torch.Tensor], folder: Path, weight_name: str = LORA_WEIGHT_NAME) -> None:
        self.family.pipeline_class.save_lora_weights(  # the pipeline class records the family in the file
            folder,
            transformer_lora_layers=layers,
            weight_name=weight_name,
            transformer_lora_adapter_metadata=self.lora_metadata,
        )

    def _save_lora_hook(self, models: list, weights: list, output_dir: str) -> None:
        """Checkpoints hold the LoRA only, not the frozen transformer."""
        layers = self.lora_layers()
        if layers is not None:
            self._write_lora(layers, Path(output_dir))
        if weights:
            weights.pop()

    def _load_lora_hook(self, models: list, input_dir: str) -> None:
        model = self.accelerator.unwrap_model(models.pop())
        state_dict = LuminaVideoLoraLoaderMixin.lora_state_dict(input_dir, weight_name=LORA_WEIGHT_NAME)
        prefix = f"{LuminaVideoLoraLoaderMixin.transformer_name}."
        state_dict = {k.removeprefix(prefix): v for k, v in state_dict.items()}
        result = set_peft_model_state_dict(model, state_dict, adapter_name="default")
        if result.unexpected_keys:
            raise ValueError(f"Checkpoint {input_dir} has LoRA weights this run does not: {result.unexpected_keys}.")

    def save_checkpoint(self, step: int) -> None:
        """`checkpoint-{step}`, written under a temporary name and renamed when complete; older ones beyond
        `checkpoints_total_limit` are removed after."""
        accelerator = self.accelerator
        folder = self.config.output_path / "checkpoints"
        staging, final = folder / f".{CHECKPOINT_PREFIX}{step}.tmp", folder / f"{CHECKPOINT_PREFIX}{step}"
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            state = {"global_step": step, "global_batch_size": self.family.global_batch_size}
            (staging / TRAINER_STATE_FILE).write_text(json.dumps(state))
            replace_folder(staging, final)  # an existing one when re-running from an older checkpoint
            limit = self.config.checkpoints_total_limit
            for _, old in list_checkpoints(folder)[: -limit if limit else 0]:
                shutil.rmtree(old)
            logger.info(f"Saved {final}.")
        accelerator.wait_for_everyone()

    def _resume(self) -> int:
        if self.resume_path is None:
            if self.config.resume_from_checkpoint == "latest":
                logger.info("No checkpoint to resume from; starting a new run.")
            return 0
        state = json.loads((self.resume_path / TRAINER_STATE_FILE).read_text())
        if state["global_batch_size"] != self.family.global_batch_size:
            logger.warning(
                f"The checkpoint was trained with a global batch of {state['global_batch_size']}, this run uses "
                f"{self.family.global_batch_size}: the data order differs from the interrupted run."
            )
        self.accelerator.load_state(str(self.resume_path))
        if self.ema is not None:
            self.ema.to(self.accelerator.device)  # loaded on the CPU
        logger.info(f"Resumed from {self.resume_path} at step {state['global_step']}.")
        return state["global_step"]

    def _prepare_validation(self) -> None:
        """What validation needs computed once (e.g. the prompts' text features), on the main process."""
        accelerator = self.accelerator
        self.validating = accelerator.is_main_process and self.family.prepare_validation(
            accelerator, self.weight_dtype
        )
        # Under FSDP every process takes part in gathering the weights the main process renders with.
        self.gathers_for_validation = self.sharded and broadcast_object_list([self.validating])[0]

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The moving average of the weights in the transformer for the block (when there is one), the trained
        weights back after; touches no random stream."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.trainable)
        self.ema.copy_to(self.trainable)
        try:
            yield
        finally:
            self.ema.restore(self.trainable)

    def whole_transformer(self) -> nn.Module | None:
        """The transformer with all its weights, on the main process (None elsewhere); called on every process. Under
        FSDP, where each process holds shards, an unsharded copy made from the gathered weights; otherwise the
        trained model itself."""
        accelerator = self.accelerator
        model = accelerator.unwrap_model(self.transformer)
        if not self.sharded:
            return model if accelerator.is_main_process else None
        state_dict = accelerator.get_state_dict(self.transformer)
        if not accelerator.is_main_process:
            return None
        with init_empty_weights():
            whole = self.family.transformer_class.from_config(model.config)
            if self.lora_metadata is not None:
                whole.add_adapter(model.peft_config["default"])
        whole.load_state_dict(state_dict, assign=True)
        return whole.to(accelerator.device)

    def validate(self, step: int) -> list[Path]:
        """Renders the validation samples with the same seed (with the averaged weights in full mode); returns their
        paths (main process)."""
        config, accelerator = self.config, self.accelerator
        paths = []
        if self.validating or self.gathers_for_validation:
            with self.averaged_weights():
                transformer = self.whole_transformer()
                if self.validating:
                    folder = config.output_path / "validation"
                    folder.mkdir(parents=True, exist_ok=True)
                    seed = config.seed if config.validation_seed is None else config.validation_seed
                    transformer.eval()
                    # Validation must not move the training's random streams, or a resumed run would diverge.
                    devices = [accelerator.device] if accelerator.device.type == "cuda" else []
                    with torch.random.fork_rng(devices=devices), torch.no_grad(), accelerator.autocast():
                        paths = self.family.render_validation(
                            transformer, accelerator.device, self.weight_dtype, step, folder, seed
                        )
                    transformer.train()
                    logger.info(f"Validation samples of step {step}: {[str(p) for p in paths]}")
        accelerator.wait_for_everyone()
        return paths

    @property
    def sharded(self) -> bool:
        """Whether FSDP splits the weights over the processes (set in the accelerate config)."""
        return self.accelerator.distributed_type == DistributedType.FSDP

    def train(self) -> Path:
        self._check_before_start()
        self._setup_accelerator()
        self._setup_data()
        self._setup_model()
        self._prepare_validation()
        config, accelerator = self.config, self.accelerator
        global_step = self._resume()

        keys = self.family.loss_keys
        columns = ["step", "loss", *[f"loss_{k}" for k in keys], "lr", "grad_norm", "seconds"]
        loss_log = (
            LossLog(config.output_path / "logs" / "loss.csv", columns, global_step)
            if accelerator.is_main_process
            else None
        )
        if config.report_to == "tensorboard":
            accelerator.init_trackers(
                f"lumina-{config.model_family}-{config.training_mode}",
                config={k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))},
            )
        per_step = self.family.micro_batches_per_step
        loader = DataLoader(
            self.family.batch_dataset(accelerator.process_index),
            batch_size=None,
            sampler=range(global_step * per_step, config.max_train_steps * per_step),
            num_workers=config.dataloader_num_workers,
            collate_fn=unbatched,
        )
        batches = iter(loader)
        if accelerator.is_main_process:
            streams = f", patchifications {keys}" if keys else ""
            logger.info(
                f"Training {len(self.family.data)} samples{streams}, {config.max_train_steps} steps of "
                f"{per_step} micro-batches of {self.family.global_batch_size} samples."
            )
        progress = tqdm(
            total=config.max_train_steps,
            initial=global_step,
            desc="Training",
            unit="step",
            disable=not accelerator.is_local_main_process,
        )
        sample_paths: list[Path] = []
        validated_at = None
        self.transformer.train()
        while global_step < config.max_train_steps:
            started = time.perf_counter()
            logs = self._optimizer_step(batches, keys)
            global_step += 1
            if loss_log is not None:
                loss_log.write({"step": global_step, **logs, "seconds": round(time.perf_counter() - started, 4)})
            accelerator.log(logs, step=global_step)
            progress.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}")
            progress.update()

            if global_step % config.checkpointing_steps == 0:
                self.save_checkpoint(global_step)
            if config.validation_steps and global_step % config.validation_steps == 0:
                sample_paths, validated_at = self.validate(global_step), global_step
        progress.close()
        if validated_at != global_step:
            # After the loop, so that a run resumed from its last checkpoint ends with the final videos too.
            sample_paths = self.validate(global_step)
        return self._finish(loss_log, sample_paths)

    def _optimizer_step(
        self, batches: Iterator[TrainingBatch | AudioTrainingBatch], keys: list[str]
    ) -> dict[str, float]:
        """The step's micro-batches (video: one per patchification and accumulation round), then one AdamW step;
        returns the losses averaged over processes, per stream (patchification) and overall."""
        config, accelerator = self.config, self.accelerator
        stream_losses = torch.zeros(max(len(keys), 1), device=accelerator.device)
        for within in range(self.family.micro_batches_per_step):
            batch = next(batches).to(accelerator.device)
            generators = [sample_generator(seed, "noise") for seed in batch.seeds]
            output = flow_matching_loss(self.transformer, batch, generators, config.vd_weight)
            # The reference sums the losses of the patchifications; accumulation rounds are averaged.
            accelerator.backward(output.loss / config.gradient_accumulation_steps)
            stream_losses[within % len(stream_losses)] += output.loss.detach() / config.gradient_accumulation_steps
        grad_norm = accelerator.clip_grad_norm_(self.trainable, config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.step(self.trainable)

        stream_losses = accelerator.reduce(stream_losses, reduction="mean")
        return {
            "loss": stream_losses.mean().item(),
            **{f"loss_{k}": v.item() for k, v in zip(keys, stream_losses, strict=False)},
            "lr": self.lr_scheduler.get_last_lr()[0],
            "grad_norm": float(grad_norm),
        }

    def _finish(self, loss_log: LossLog | None, sample_paths: list[Path]) -> Path:
        """The LoRA in `load_lora_weights` format or the full pipeline folder, the model card, the loss plot, and
        the Hub upload."""
        config, accelerator = self.config, self.accelerator
        output = config.output_path
        accelerator.wait_for_everyone()
        full = config.training_mode == "full"
        layers = None if full else self.lora_layers()
        if full and self.ema is not None:
            self.ema.copy_to(self.trainable)  # training is over: the pipeline holds the moving average
        transformer = self.whole_transformer() if full else None
        result = output / (PIPELINE_FOLDER if full else LORA_WEIGHT_NAME)
        if accelerator.is_main_process:
            loss_log.close()
            loss_log.plot(output / "logs" / "loss.png")
            repo_id = self._create_repo() if config.push_to_hub else None
            if full:
                with build_folder_atomically(result, overwrite=True) as building:
                    self._write_pipeline(transformer, building, sample_paths)
                    self._write_model_card(building, sample_paths, repo_id or str(result))
            else:
                with atomic_output_file(result) as staging:
                    self._write_lora(layers, staging.parent, weight_name=staging.name)
                self._write_model_card(output, sample_paths, repo_id or str(output))
            if repo_id is not None:
                self._upload(repo_id, sample_paths)
            logger.info(f"Saved {result}.")
            model = str(result) if full else config.pretrained_model_name_or_path
            logger.info(f"Try it: {shlex.join(self.family.try_command(model, None if full else result))}")
        accelerator.end_training()
        return result

    def _write_pipeline(self, transformer: nn.Module, folder: Path, sample_paths: list[Path]) -> None:
        """The base pipeline with the trained `transformer`, and the validation videos the model card shows."""
        config = self.config
        pipe = config.load_base_pipeline(self.family.pipeline_class, transformer=transformer)
        pipe.save_pretrained(folder)
        for path in sample_paths:
            copy = folder / path.relative_to(config.output_path)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)

    def _create_repo(self) -> str:
        """The Hub repository (created if needed), by its full id."""
        from huggingface_hub import create_repo

        config = self.config
        name = config.hub_model_id or config.output_path.resolve().name
        return create_repo(name, exist_ok=True, private=config.hub_private).repo_id

    def _write_model_card(self, folder: Path, sample_paths: list[Path], repo_id: str) -> None:
        """`folder/README.md`; `repo_id` is where the card's usage code loads the LoRA or the pipeline from."""
        config = self.config
        foreign = LORA_ONLY_SETTINGS if config.training_mode == "full" else FULL_ONLY_SETTINGS
        settings = {name: getattr(config, name) for name in CARD_SETTINGS if name not in foreign}
        settings |= self.family.card_settings() | {
            "mixed_precision": self.accelerator.mixed_precision,
            "samples": len(self.family.data),
        }
        if config.training_mode == "lora":
            settings |= {
                "target_modules": self.model_settings.target_modules,
                "lora_alpha": config.lora_alpha or config.rank,
            }
        base_model = config.pretrained_model_name_or_path
        validation_video = sample_paths[0].relative_to(config.output_path).as_posix() if sample_paths else None
        if config.model_family == "v2a":
            card = create_v2a_model_card(
                repo_id,
                components={"Transformer": f"trained from {base_model} with diffusers-lumina-video"},
                training_settings=settings,
                lora_base_model=base_model if config.training_mode == "lora" else None,
                validation_video=validation_video,
            )
        else:
            common = {
                "repo_id": repo_id,
                "base_model": base_model,
                "training_settings": settings,
                "validation_video": validation_video,
                "validation_prompt": config.validation_prompts[0] if sample_paths else None,
            }
            if config.training_mode == "full":
                card = create_full_model_card(**common)
            else:
                card = create_lora_model_card(trigger_phrase=config.trigger_word, **common)
        with atomic_output_file(folder / "README.md") as staging:
            card.save(staging)

    def _upload(self, repo_id: str, sample_paths: list[Path]) -> None:
        """LoRA mode: the LoRA, its card, the settings, the loss log and the validation videos. Full mode: the
        pipeline folder, which holds its card and the validation videos."""
        from huggingface_hub import upload_folder

        output = self.config.output_path
        if self.config.training_mode == "full":
            upload_folder(repo_id=repo_id, folder_path=output / PIPELINE_FOLDER, commit_message="Lumina-Video model")
        else:
            upload_folder(
                repo_id=repo_id,
                folder_path=output,
                allow_patterns=[
                    LORA_WEIGHT_NAME,
                    "README.md",
                    "training_config.json",
                    "logs/loss.csv",
                    "logs/loss.png",
                    *[p.relative_to(output).as_posix() for p in sample_paths],
                ],
                commit_message="Lumina-Video LoRA",
            )
        logger.info(f"Pushed to https://huggingface.co/{repo_id}.")
