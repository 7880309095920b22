"""Task kinds: each class's loss, activation, metric inputs, prediction columns and explanation scores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.errors import ConfigError
from dnalm.metrics import flatten, make_metrics
from dnalm.tasks import BinaryTask, MulticlassTask, MultilabelTask, RegressionTask, Task

LN3 = math.log(3.0)


def test_binary_loss_activation_and_columns() -> None:
    task = BinaryTask(2, ["neg", "pos"])
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]])
    # softmax of (0, ln 3) is (1/4, 3/4)
    assert task.loss(logits, torch.tensor([1, 1])).item() == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)
    np.testing.assert_allclose(task.activation(logits).numpy(), [[0.25, 0.75], [0.75, 0.25]], rtol=1e-6)
    assert task.metric_inputs(logits).tolist() == pytest.approx([0.75, 0.25])  # the positive class
    columns = task.columns(logits)
    assert list(columns) == ["prob_neg", "prob_pos", "predicted"]
    assert columns["predicted"] == ["pos", "neg"] and columns["prob_pos"].tolist() == pytest.approx([0.75, 0.25])
    assert task.num_logits == 2 and task.single_label and task.positive_class == "pos"
    assert task.unlabelled_targets(3).shape == (3,)


def test_binary_score_kinds() -> None:
    task = BinaryTask(2, ["neg", "pos"])
    logits = torch.tensor([[0.5, 2.0]])
    assert task.score(logits, 1, "log_odds").item() == pytest.approx(1.5)  # z1 - z0
    assert task.score(logits, 1, "logit").item() == pytest.approx(2.0)
    assert task.score(logits, 1, "prob").item() == pytest.approx(1 / (1 + math.exp(-1.5)))
    with pytest.raises(ConfigError, match="score='odds'"):
        task.check_score("odds")


def test_multiclass_columns_counts_and_undefined_metrics() -> None:
    task = MulticlassTask(3, ["a", "b", "c"])
    logits = torch.tensor([[0.0, 0.0, LN3], [2.0, 0.0, 0.0]])
    columns = task.columns(logits)
    assert columns["predicted"] == ["c", "a"] and columns["prob_c"][0] == pytest.approx(0.6)
    assert task.class_counts(torch.tensor([0, 0, 2])).tolist() == [2, 0, 1]
    present = torch.tensor([True, False, False])
    assert task.undefined_metrics(present, "test") == ["test/auroc", "test/auprc", "test/mcc", "test/auroc_b",
                                                       "test/auroc_c"]
    assert task.undefined_metrics(torch.tensor([True, True, False]), "val") == ["val/auroc_c"]
    # log-odds of a class: its logit minus the log-sum-exp of the others
    assert task.score(logits, 2, "log_odds")[0].item() == pytest.approx(LN3 - math.log(2.0))


def test_multilabel_loss_activation_and_columns() -> None:
    task = MultilabelTask(2, ["x", "y"])
    logits = torch.tensor([[LN3, -LN3]])  # sigmoid: 3/4 and 1/4
    np.testing.assert_allclose(task.activation(logits).numpy(), [[0.75, 0.25]], rtol=1e-6)
    expected = -(math.log(0.75) + math.log(0.75)) / 2  # targets 1 and 0: both predicted at 3/4
    assert task.loss(logits, torch.tensor([[1, 0]])).item() == pytest.approx(expected)
    assert task.columns(torch.tensor([[LN3, -LN3], [LN3, LN3], [-1.0, -1.0]]))["predicted"] == ["x", "x;y", ""]
    np.testing.assert_allclose(task.probabilities(logits).numpy(), [[0.75, 0.25]], rtol=1e-6)
    assert task.class_counts(torch.tensor([[1, 0]])) is None and not task.single_label
    assert task.score(logits, 0, "prob").item() == pytest.approx(0.75)
    assert task.score(logits, 0, "log_odds").item() == pytest.approx(LN3)


def test_regression_loss_columns_and_refusals() -> None:
    task = RegressionTask(1, ["expression"])
    logits = torch.tensor([[1.0], [3.0]])
    assert task.loss(logits, torch.tensor([[0.0], [1.0]])).item() == pytest.approx((1 + 4) / 2)
    assert task.metric_inputs(logits).shape == (2,) and task.metric_targets(torch.ones(2, 1)).shape == (2,)
    assert task.columns(logits)["predicted_expression"].tolist() == [1.0, 3.0]
    assert task.encode(pd.Series([0.5, 2.0]), "train", pd.Series(["a", "b"])).tolist() == [[0.5], [2.0]]
    with pytest.raises(ConfigError, match="no class probabilities"):
        task.probabilities(logits)
    with pytest.raises(ConfigError, match="score=logit"):
        task.check_score("prob")
    task.check_score("logit")
    two = RegressionTask(2, ["a", "b"])
    assert two.metric_inputs(torch.zeros(4, 2)).shape == (4, 2)


def test_metrics_of_each_kind_score_a_known_case() -> None:
    binary = make_metrics(BinaryTask(2, ["0", "1"]), "test")
    binary.update(torch.tensor([0.9, 0.8, 0.2, 0.6]), torch.tensor([1, 1, 0, 0]))
    values = flatten(binary.compute())
    assert values["test/accuracy"] == pytest.approx(0.75) and values["test/auroc"] == pytest.approx(1.0)
    multiclass = make_metrics(MulticlassTask(3, ["a", "b", "c"]), "val")
    multiclass.update(torch.eye(3)[[0, 1, 2, 2]], torch.tensor([0, 1, 2, 2]))
    result = flatten(multiclass.compute())
    assert result["val/mcc"] == pytest.approx(1.0) and result["val/f1_b"] == pytest.approx(1.0)
    regression = make_metrics(RegressionTask(1, ["y"]), "test")
    regression.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0]))
    assert flatten(regression.compute())["test/mse"] == pytest.approx(4 / 3)


def test_kinds_are_found_by_name_and_a_new_kind_is_one_class() -> None:
    assert Task.kinds()[:4] == ["binary", "multiclass", "multilabel", "regression"]
    assert isinstance(Task.make("multilabel", 3, ["a", "b", "c"]), MultilabelTask)

    class CountTask(RegressionTask):
        """A test-only kind: Poisson loss on log-rates."""

        kind = "count_for_test"

        def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.poisson_nll_loss(logits.float(), target.float().view_as(logits))

    task = Task.from_dict({"kind": "count_for_test", "num_outputs": 1, "label_names": ["reads"]})
    assert isinstance(task, CountTask) and task.to_dict()["kind"] == "count_for_test"
    assert task.loss(torch.zeros(2, 1), torch.ones(2, 1)).item() == pytest.approx(1.0)  # exp(0) - 1 * 0
    with pytest.raises(ConfigError, match="unknown"):
        Task.make("no_such_kind", 1)


def test_unlabelled_targets_match_the_encoded_shape() -> None:
    ids = pd.Series(["a", "b"])
    for task, labels in [(BinaryTask(2, ["0", "1"]), pd.Series([0, 1])),
                         (MultilabelTask(2, ["x", "y"]), pd.Series([[0, 1], [1, 1]])),
                         (RegressionTask(2, ["a", "b"]), pd.Series([np.array([0.5, 1.0]), np.array([2.0, 3.0])]))]:
        assert task.unlabelled_targets(2).shape == task.encode(labels, "test", ids).shape, task.kind
