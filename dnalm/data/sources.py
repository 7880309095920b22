"""Read a dataset into one shape: per split, a DataFrame with ``id``, ``sequence`` and ``label`` columns."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from dnalm.data.normalise import SequencePolicy
from dnalm.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "validation", "val", "dev"), "test": ("test",)}
_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".csv.gz", ".tsv.gz", ".parquet.gz", ".fa", ".fasta", ".fna",
                   ".fa.gz", ".fasta.gz", ".fna.gz")


def find_split_files(folder: Path) -> dict[str, Path]:
    """Map split name -> file in a table folder (``train`` / optional ``valid`` / ``test``)."""
    found: dict[str, Path] = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            hits = [folder / f"{alias}{suffix}" for suffix in _TABLE_SUFFIXES if (folder / f"{alias}{suffix}").is_file()]
            if len(hits) > 1:
                raise DataError(f"{folder} has several files for split '{split}': {[h.name for h in hits]}; keep one.")
            if hits:
                found[split] = hits[0]
                break
    return found


LINE = "__line__"  # a column with each row's 1-based line in its file (for error messages), when known
SOURCE = "source"  # DataFrame.attrs key: the file a frame was read from
HAS_LINES = "has_lines"  # DataFrame.attrs key: LINE holds file lines (else row numbers, e.g. parquet)


def policy_of(cfg: DictConfig | None) -> SequencePolicy:
    """The ``data.policy`` block as a :class:`SequencePolicy` (defaults when absent)."""
    from omegaconf import OmegaConf

    if cfg is None or cfg.get("policy") is None:
        return SequencePolicy()
    return SequencePolicy(**OmegaConf.to_container(cfg.policy, resolve=True))


def read_table(path: Path, sequence_column: str = "sequence", policy: SequencePolicy | None = None,
               fmt: str | None = None) -> pd.DataFrame:
    """Read one csv/tsv/parquet (optionally gzipped), FASTA, GenBank or EMBL file (records under ``policy``).

    A ``__line__`` column gives each row's line in the file (csv/tsv: one row per line after the header;
    FASTA: the header line; GenBank/EMBL: the LOCUS/ID line), and ``attrs["source"]`` the path, so errors can
    point at the record. ``fmt`` (``fasta``, ``genbank``, ``embl``) reads a sequence file whatever its name.

    The sequence column of a csv/tsv is read as Python strings (object dtype): the tokenizer needs those, and
    pandas' default Arrow string column would hold every sequence twice until it is converted (on 1 kb
    windows about 3x the sequence bytes of resident memory, which the allocator keeps after the copy is freed).
    """
    from dnalm.data.seqfile import ANNOTATED_SUFFIXES, FASTA_SUFFIXES

    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet") and not fmt:
            frame = pd.read_parquet(path)
        elif fmt or name.endswith((*FASTA_SUFFIXES, *ANNOTATED_SUFFIXES)):
            frame = read_fasta_table(path, policy=policy, fmt=fmt)
        else:
            sep = "\t" if name.endswith(".tsv") else ","
            frame = pd.read_csv(path, sep=sep, dtype={sequence_column: object}, keep_default_na=False, na_values=[])
            frame[LINE] = np.arange(2, len(frame) + 2)
    except (EOFError, OSError) as err:  # a truncated or corrupt gzip stream
        raise DataError(f"cannot read {path}: the file is truncated or corrupt ({type(err).__name__}: {err}); "
                        "re-download or re-compress it.") from err
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read {path}: {err}") from err
    frame.attrs[SOURCE] = str(path)
    return frame


def as_str_objects(values: pd.Series) -> pd.Series:
    """``values`` as Python strings in an object column; a column that already is one is returned as it is."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return values.astype(str).astype(object)


def read_fasta_table(path: Path, policy: SequencePolicy | None = None, fmt: str | None = None) -> pd.DataFrame:
    """A FASTA (or GenBank/EMBL) file as a table: ``id`` from the header (accession.version), ``label`` from
    ``label=<x>`` in the header if present.

    Empty records follow ``policy.empty`` (raise naming the record, or skip and count, logged).
    """
    from dnalm.data.normalise import NormaliseReport
    from dnalm.data.seqfile import read_sequences

    report = NormaliseReport()
    ids, seqs, labels, lines = [], [], [], []
    for record_id, sequence, line in read_sequences(path, policy, report, fmt=fmt):
        ids.append(record_id)
        seqs.append(sequence)
        labels.append(_header_label(record_id))
        lines.append(line)
    if report.empty_skipped:
        log.warning("%s: %s", path, report.summary())
    frame = pd.DataFrame({"id": ids, "sequence": seqs, LINE: lines})
    if any(label is not None for label in labels):
        frame["label"] = labels
    return frame


def _header_label(header: str) -> str | None:
    for token in header.split():
        if token.startswith("label="):
            return token.split("=", 1)[1]
    return None


def load_table_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """The splits of a table folder (or a single file, used as the test split for prediction)."""
    path = Path(str(cfg.path)).expanduser()
    if not path.exists():
        raise DataError(f"data.path={path} does not exist. Point it at a folder with train/[valid]/test files "
                        "(.csv, .tsv, .parquet, optionally .gz) holding sequence and label columns.")
    column = str(cfg.get("sequence_column") or "sequence")
    policy = policy_of(cfg)
    if path.is_file():
        if not cfg.get("allow_unlabelled", False):  # training and evaluation read a folder of splits
            raise ConfigError(f"data.path={path} is a file; it must be a folder holding train/[valid]/test files, "
                              f"e.g. data.path={path.parent} if {path.name} is one of them.")
        return {"test": read_table(path, column, policy, cfg.get("format"))}
    files = find_split_files(path)
    if "train" not in files and "test" not in files:
        raise DataError(f"{path} has no train or test file. Expected names like train.csv, valid.csv, test.csv "
                        "(.tsv/.parquet and .gz also work).")
    return {split: read_table(file, column, policy) for split, file in files.items()}


def load_hub_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """Splits of a Hugging Face dataset (hub id or a folder saved with ``save_to_disk``)."""
    import datasets

    from dnalm.models import hub

    reference = str(cfg.id)
    if hub.is_local(reference) and (Path(reference) / "dataset_dict.json").is_file():
        dataset = datasets.load_from_disk(reference)
    elif hub.is_local(reference):
        dataset = datasets.load_dataset(reference, cfg.get("config"))
    elif not hub.hub_reachable() and not hub.cached_on_disk(reference, "README.md", repo_type="dataset"):
        raise DataError(
            f"cannot load dataset '{reference}': the Hugging Face hub is unreachable and it is not cached.\n"
            f"  Download it elsewhere and set data.path=<folder with train/test files>, or data.id=<folder saved "
            "with datasets' save_to_disk>.")
    else:
        dataset = datasets.load_dataset(reference, cfg.get("config"), revision=cfg.get("revision"))
    frames: dict[str, pd.DataFrame] = {}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if alias in dataset:
                frames[split] = dataset[alias].to_pandas()
                break
    if not frames:
        raise DataError(f"dataset '{reference}' has splits {list(dataset)}; dnalm needs train and/or test.")
    return frames


def load_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """Dispatch on the data config: a local ``path`` wins, then a hub ``id``, then the generated demo."""
    if cfg.get("path"):
        frames = load_table_splits(cfg)
    elif cfg.get("id"):
        frames = load_hub_splits(cfg)
    elif cfg.get("demo"):
        from dnalm.data.demo import make_demo_splits

        frames = make_demo_splits(**cfg.demo)
    else:
        raise DataError("the data config names no source: set data.path=<folder>, data.id=<hub dataset>, "
                        "or use data=demo.")
    return {split: _standard_columns(frame, split, cfg) for split, frame in frames.items()}


def _standard_columns(frame: pd.DataFrame, split: str, cfg: DictConfig) -> pd.DataFrame:
    seq_col, label_cols, id_col = cfg.sequence_column, cfg.label_column, cfg.get("id_column")
    label_cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
    wanted = [seq_col, *label_cols] if split != "predict" else [seq_col]
    missing = [c for c in wanted if c not in frame.columns]
    if missing and not (split == "test" and missing == label_cols and cfg.get("allow_unlabelled", False)):
        columns = [c for c in frame.columns if c != LINE]
        raise DataError(f"{frame.attrs.get(SOURCE, 'data')}: the {split} split has no column(s) {missing}; it has "
                        f"{columns}. "
                        f"Set data.sequence_column / data.label_column to the right names.")
    if len(frame) == 0:
        raise DataError(f"the {split} split is empty; give it rows or remove the file.")
    out = pd.DataFrame({"sequence": as_str_objects(frame[seq_col])})
    out[LINE] = frame[LINE].to_numpy() if LINE in frame.columns else np.arange(1, len(frame) + 1)
    out.attrs[HAS_LINES] = LINE in frame.columns
    if id_col and id_col in frame.columns:
        out["id"] = frame[id_col].astype(str).to_numpy()
    elif "id" in frame.columns:
        out["id"] = frame["id"].astype(str).to_numpy()
    else:
        out["id"] = [f"{split}:{i}" for i in range(len(frame))]
    present = [c for c in label_cols if c in frame.columns]
    if len(present) == 1:
        out["label"] = frame[present[0]].to_numpy()
    elif present:
        out["label"] = list(frame[present].to_numpy())
    out.attrs[SOURCE] = frame.attrs.get(SOURCE, f"the {split} split")
    if "label" in out.columns:
        _check_labels_present(out, split)
    return out.reset_index(drop=True)


# The spellings of "no value" that spreadsheets, R and pandas write; read as text they would become a class.
MISSING_LABELS = frozenset({"", "nan", "na", "n/a", "null", "none", "<na>"})


def where(frame: pd.DataFrame, row: int) -> str:
    """``line N`` of a frame's row in its file (``row N`` where lines are unknown, e.g. parquet)."""
    return f"{'line' if frame.attrs.get(HAS_LINES) else 'row'} {int(frame[LINE].iloc[row])}"


def _is_missing(value: object) -> bool:
    if not pd.api.types.is_scalar(value):
        return False
    return bool(pd.isna(value)) or (isinstance(value, str) and value.strip().lower() in MISSING_LABELS)


def _check_labels_present(frame: pd.DataFrame, split: str) -> None:
    """An empty label cell is an error naming the record, never a silent extra class."""
    missing = frame["label"].map(_is_missing).to_numpy(dtype=bool)
    if missing.any():
        row = int(missing.argmax())
        raise DataError(f"{frame.attrs.get(SOURCE)}: {int(missing.sum())} {split} record(s) have no label, e.g. "
                        f"record '{frame['id'].iloc[row]}' ({where(frame, row)}). "
                        "Fill in the labels or remove those rows (empty, NaN, NA, null and None all count as missing).")
