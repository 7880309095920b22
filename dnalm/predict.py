"""``python -m dnalm.predict ckpt_path=... input=<fasta|genbank|embl|table> output=<csv>``: class probabilities per
sequence."""

from __future__ import annotations

import logging
import sys

import hydra
import lightning as L
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from dnalm import runtime
from dnalm.apps.inputs import check_output, warn_duplicate_ids
from dnalm.configs import CONFIG_DIR, exit_on_renamed_config
from dnalm.data.datamodule import DNADataModule
from dnalm.errors import ConfigError
from dnalm.inference import load_module, predict_loader, predictions_frame
from dnalm.utils.cli import run_task

log = logging.getLogger("dnalm.predict")


def predict(cfg: DictConfig) -> pd.DataFrame:
    """Write ``cfg.output`` with id, class probabilities and the predicted label for every input record.

    Sequences longer than the model's context are scored as sliding windows whose logits are averaged.
    """
    if not cfg.get("input"):
        raise ConfigError("give input=<FASTA, GenBank, EMBL or table file> (and output=<csv>).")
    output = check_output(cfg.output, [cfg.input, cfg.get("ckpt_path")], bool(cfg.get("overwrite", False)))
    L.seed_everything(int(cfg.seed), workers=True)
    module, backbone, task = load_module(cfg)
    # from a plain container: Hydra's struct flag would refuse the new allow_unlabelled key
    data_cfg = OmegaConf.merge(OmegaConf.to_container(cfg.data, resolve=True),
                               {"path": str(cfg.input), "id": None, "allow_unlabelled": True})
    datamodule = DNADataModule(data_cfg, backbone.tokenizer, backbone.max_tokens, seed=int(cfg.seed), task=task,
                               cache_dir=cfg.paths.get("cache_dir"), only_splits=("test",))
    datamodule.setup("predict")
    warn_duplicate_ids(datamodule.splits["test"].records["id"].tolist(), cfg.input)
    trainer = runtime.make_trainer(cfg, runtime.make_callbacks(cfg), [])
    records = datamodule.splits["test"].records
    logits = predict_loader(trainer, module, datamodule.loader("test", shuffle=False), len(records))
    frame = predictions_frame(logits, records, task)
    if trainer.is_global_zero:
        output.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(output, index=False)
        windows = datamodule.splits["test"].windows_added
        print(f"wrote {len(frame)} predictions to {output}" + (f" ({windows} extra windows for long sequences)" if windows else ""))
    return frame


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    """Command-line entry point."""
    run_task(predict, cfg)


if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
