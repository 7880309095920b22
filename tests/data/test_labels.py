"""Task inference, label encoding and the stratified validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnalm.data.labels import infer_task, stratified_split
from dnalm.errors import ConfigError, DataError
from dnalm.tasks import MulticlassTask, MultilabelTask, RegressionTask, Task


def _ids(n: int) -> pd.Series:
    return pd.Series([f"rec{i}" for i in range(n)])


@pytest.mark.parametrize(("labels", "kind", "names"), [
    ([0, 1, 1, 0], "binary", ["0", "1"]),
    ([0.0, 1.0, 1.0], "binary", ["0.0", "1.0"]),
    ([2, 0, 1, 3, 10], "multiclass", ["0", "1", "2", "3", "10"]),
    (["promoter", "enhancer", "other", "enhancer"], "multiclass", ["enhancer", "other", "promoter"]),
    (["yes", "no"], "binary", ["no", "yes"]),
])
def test_infer_classes(labels: list, kind: str, names: list[str]) -> None:
    task = infer_task(pd.Series(labels))
    assert (task.kind, task.num_outputs, task.label_names) == (kind, len(names), names)


def test_infer_regression_and_lists() -> None:
    task = infer_task(pd.Series([0.5, 1.25, -3.0], name="expression"))
    assert (task.kind, task.num_outputs, task.label_names) == ("regression", 1, ["expression"])
    multilabel = infer_task(pd.Series([[0, 1, 1], [1, 0, 0]]))
    assert (multilabel.kind, multilabel.num_outputs) == ("multilabel", 3)
    multi_target = infer_task(pd.Series([np.array([0.2, 3.0]), np.array([1.5, -1.0])]))
    assert (multi_target.kind, multi_target.num_outputs) == ("regression", 2)


def test_explicit_kind_and_label_names() -> None:
    # Whole numbers can still be a regression target when the config says so.
    assert infer_task(pd.Series([1, 2, 3, 4]), kind="regression").kind == "regression"
    task = infer_task(pd.Series(["b", "a"]), label_names=["b", "a", "c"])
    assert task.label_names == ["b", "a", "c"] and task.kind == "multiclass"
    with pytest.raises(DataError, match="binary task needs two classes"):
        infer_task(pd.Series([0, 1, 2]), kind="binary")


def test_task_round_trip() -> None:
    task = MulticlassTask(3, ["a", "b", "c"])
    assert Task.from_dict(task.to_dict()) == task
    assert Task.from_dict({**task.to_dict(), "kind": "multilabel"}) != task


def test_unknown_kind_is_a_config_error_listing_the_kinds() -> None:
    with pytest.raises(ConfigError, match=r"data.task='ordinal' is unknown.*'binary', 'multiclass'"):
        infer_task(pd.Series([0, 1]), kind="ordinal")


def test_encode_classes_follows_the_label_map() -> None:
    task = infer_task(pd.Series(["tata", "non", "tata"]))
    encoded = task.encode(pd.Series(["non", "tata", "tata", "non"]), "test", _ids(4))
    assert encoded.dtype == np.int64 and encoded.tolist() == [0, 1, 1, 0]
    # Integer labels read from another file map through their text, so 1 and "1" agree.
    int_task = infer_task(pd.Series([0, 1]))
    assert int_task.encode(pd.Series(["1", "0"]), "test", _ids(2)).tolist() == [1, 0]


def test_unknown_label_names_the_record() -> None:
    task = infer_task(pd.Series([0, 1, 0]))
    with pytest.raises(DataError) as err:
        task.encode(pd.Series([0, 1, 2, 2]), "test", _ids(4))
    message = str(err.value)
    assert "2 test record(s)" in message and "'rec2'" in message and "'2'" in message
    assert "data.label_names" in message


def test_encode_regression_and_multilabel() -> None:
    reg = RegressionTask(1, ["y"]).encode(pd.Series([0.5, 2.0]), "train", _ids(2))
    assert reg.dtype == np.float32 and reg.shape == (2, 1)
    ml_task = MultilabelTask(3, ["a", "b", "c"])
    ml = ml_task.encode(pd.Series([[0, 1, 1], [1, 0, 0]]), "train", _ids(2))
    assert ml.dtype == np.float32 and ml.tolist() == [[0, 1, 1], [1, 0, 0]]
    with pytest.raises(DataError, match="2 values per row; the task has 3"):
        ml_task.encode(pd.Series([[0, 1], [1, 0]]), "test", _ids(2))


def test_stratified_split_keeps_class_proportions() -> None:
    labels = np.array([0] * 300 + [1] * 100 + [2] * 20)
    keep, held = stratified_split(labels, 0.05, seed=42)
    assert np.bincount(labels[held]).tolist() == [15, 5, 1]
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(labels)
    assert np.all(np.diff(held) > 0) and np.all(np.diff(keep) > 0)


def test_stratified_split_is_deterministic_per_seed() -> None:
    labels = np.array([0, 1] * 100)
    first, second = stratified_split(labels, 0.1, 42), stratified_split(labels, 0.1, 42)
    assert np.array_equal(first[1], second[1])
    assert not np.array_equal(first[1], stratified_split(labels, 0.1, 7)[1])


def test_stratified_split_small_classes_and_edge_fractions() -> None:
    labels = np.array([0] * 40 + [1] * 2 + [2])
    _, held = stratified_split(labels, 0.05, 0)
    # A class of two still gives one example to validation; a singleton stays in train.
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 1, 0]
    keep, held = stratified_split(labels, 0.0, 0)
    assert len(held) == 0 and len(keep) == len(labels)


def test_stratified_split_of_non_class_targets_is_random() -> None:
    targets = np.linspace(0, 1, 100, dtype=np.float32).reshape(-1, 1)
    keep, held = stratified_split(targets, 0.2, 1)
    assert len(held) == 20 and len(keep) == 80
    assert held.max() - held.min() > 50  # spread over the range, not a contiguous block


@pytest.mark.parametrize("kind", ["auto", "binary", "multiclass"])
def test_one_class_is_refused_with_advice_that_works(kind: str) -> None:
    """One training class cannot make a classifier: the message must not send the user to another dead end."""
    with pytest.raises(DataError, match=r"at least two classes.*only \['a'\]") as err:
        infer_task(pd.Series(["a", "a", "a"]), kind)
    assert "data.task=multiclass" not in str(err.value)


def test_binary_error_for_three_classes_suggests_multiclass() -> None:
    with pytest.raises(DataError, match="data.task=multiclass"):
        infer_task(pd.Series(["a", "b", "c"]), "binary")


def test_positive_class_of_string_labels_is_named() -> None:
    task = infer_task(pd.Series(["bound", "unbound", "bound"]))
    assert task.positive_class == "unbound"
    assert "positive class 'unbound'" in task.describe_positive()
    assert "data.label_names=[unbound,bound]" in task.describe_positive()
    assert infer_task(pd.Series(["a", "b", "c"])).positive_class is None
