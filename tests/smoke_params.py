"""A smoke configuration of the whole DAG for tests that check its mechanics, not its learning
(tests/e2e checks the learning on the embedded default): one short epoch per run, two steps of tiny-SD training, one few-shot fold,
small point counts, an FPS cache size the data does not hold, no ModelNet10."""

from __future__ import annotations


def smoke(params: dict) -> dict:
    """``params`` (params.yaml as loaded) changed in place into the smoke configuration; returned."""
    params["pretrain"].update(max_steps_per_epoch=2)
    params["sd"]["train"].update(vae_steps=2, unet_steps=2)
    for task in [*params["finetune"].values(), params["fewshot"], params["partseg"]]:
        task.update(epochs=1, npoints=64, num_group=8, group_size=8)
    params["fewshot"]["grid"]["folds"] = [0]
    params["finetune_common"]["modelnet40_points"] = 300
    params["paths"]["modelnet10"] = "no-modelnet10-here"
    return params
