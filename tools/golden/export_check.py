"""Does the authors' code read what ``dnalm.export`` writes for NT v2 / GENA-LM? (run by hand, never in CI).

Step 1, in dnalm's environment: fine-tune the tiny golden classifiers (``tests/fixtures/golden/nt_v2_classifier``,
``gena_bert_base_t2t_classifier`` cut to two classes) with LoRA and ``head=native``, export them (published
layout) and write each folder's token ids and ``dnalm.predict`` probabilities to ``<workdir>/<fixture>/check.json``::

    PYTHONPATH=$PWD .venv/bin/python tools/golden/export_check.py export /tmp/export_check

Step 2, in the reference environment (see README.md): load each exported folder with the authors' classes
(InstaDeep's ESM as rebuilt in ``nt_v2.py``; AIRI's ``modeling_bert.py`` from the GENA_LM mirror), print the
loading report (missing / unexpected keys) and the largest probability difference::

    /work/refenv-golden/bin/python tools/golden/export_check.py authors /tmp/export_check
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

FIXTURES = ("nt_v2_classifier", "gena_bert_base_t2t_classifier")


def export_step(workdir: Path) -> None:
    from omegaconf import OmegaConf

    from dnalm.models.backbone import load_backbone
    from tests.apps.test_export import SEQS, export_to, predict_probs
    from tests.apps.test_export_published import _binary_copy
    from tests.helpers.configs import train_tiny

    for fixture in FIXTURES:
        root = workdir / fixture
        base = _binary_copy(fixture, root / "base")
        metrics = train_tiny(root, "model=hf", f"model.name_or_path={base}", "head=native", "strategy=lora",
                             "model.max_tokens=128", "optim.lr=5e-3", "model.lora_target_modules=[query,value]")
        ckpt = Path(metrics["best_checkpoint"])
        out = export_to(root, ckpt)
        probs = predict_probs(root / "predict", f"ckpt_path={ckpt}")
        tokenizer = load_backbone(OmegaConf.create({"name_or_path": str(out), "name": fixture}),
                                  native_head=True).tokenizer
        ids = [tokenizer(seq)["input_ids"] for seq in SEQS]
        (root / "check.json").write_text(json.dumps({"folder": str(out), "ids": ids, "probs": probs.tolist()}))


def authors_step(workdir: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import nt_v2
    from common import mirror_source, module_from_source
    from transformers.models.esm import modeling_esm

    modeling_esm.EsmIntermediate, modeling_esm.EsmOutput = nt_v2.GatedIntermediate, nt_v2.BiasFreeOutput
    text, commit = mirror_source("AIRI-Institute/GENA_LM", "src/gena_lm/modeling_bert.py")
    gena = module_from_source("gena_modeling_bert", text, Path(tempfile.mkdtemp()))
    classes = {"nt_v2_classifier": modeling_esm.EsmForSequenceClassification,
               "gena_bert_base_t2t_classifier": gena.BertForSequenceClassification}
    for fixture, cls in classes.items():
        check = json.loads((workdir / fixture / "check.json").read_text())
        model, info = cls.from_pretrained(check["folder"], output_loading_info=True)
        with torch.no_grad():
            probs = np.stack([torch.softmax(model.eval()(input_ids=torch.tensor([ids])).logits, -1)[0].numpy()
                              for ids in check["ids"]])
        report = {k: v for k, v in info.items() if v} or "no missing or unexpected keys"
        print(f"{fixture}: {cls.__module__}.{cls.__name__}: {report}; "
              f"max |p_authors - p_dnalm| = {np.abs(probs - np.asarray(check['probs'])).max():.1e}")


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    {"export": export_step, "authors": authors_step}[step](folder)
