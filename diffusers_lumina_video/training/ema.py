"""The moving average (EMA) of the trained weights, also when FSDP shards them."""

from diffusers.training_utils import EMAModel
from torch.distributed.tensor import DTensor, distribute_tensor


class ShardedEMAModel(EMAModel):
    """Diffusers' `EMAModel` over the parameters a process holds. Under FSDP these are shards (DTensors): the
    average is then kept per shard, with no communication per step, and its checkpoint holds whole tensors
    (gathered on save, split again on load), the same file as without FSDP. `state_dict` and `load_state_dict` are
    collective under FSDP: every process calls them, as accelerate's `save_state` and `load_state` do."""

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["shadow_params"] = [p.full_tensor() if isinstance(p, DTensor) else p for p in self.shadow_params]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        layouts = list(self.shadow_params)
        super().load_state_dict(state_dict)
        if len(self.shadow_params) != len(layouts):
            raise ValueError(
                f"The moving average has {len(self.shadow_params)} tensors; this model trains {len(layouts)}."
            )
        self.shadow_params = [
            distribute_tensor(p.to(layout.device), layout.device_mesh, layout.placements)
            if isinstance(layout, DTensor)
            else p
            for p, layout in zip(self.shadow_params, layouts, strict=True)
        ]
