"""Every use of a private API of Lightning, torch, transformers or tokenizers, in one place.

Each function wraps one private attribute, keeps a safe fallback for a library version without it, and has a
test in ``tests/test_compat.py`` that asserts the private attribute still exists in the installed version, so
an upgrade that removes or renames it fails there, by name, instead of silently taking the fallback.

Not wrapped here because they are overrides, not calls: ``_init_weights`` and ``_can_set_attn_implementation``
(transformers' ``PreTrainedModel`` hooks, overridden by ``dnalm/models/families``) and
``_keys_to_ignore_on_load_unexpected`` (a class attribute read by ``from_pretrained``); the same test module
checks that ``PreTrainedModel`` still has them.
"""

from __future__ import annotations

from typing import Any


def attached_trainer(module: Any) -> Any | None:
    """The Trainer a LightningModule is attached to, or None (``module.trainer`` raises when there is none)."""
    return getattr(module, "_trainer", None)


def logs_this_step(trainer: Any) -> bool:
    """Whether Lightning writes step metrics after the current training batch (every ``log_every_n_steps``).

    Lightning keeps this switch on its private logger connector; without it, say yes (log every step).
    """
    connector = getattr(trainer, "_logger_connector", None)
    if connector is None or not hasattr(connector, "should_update_logs"):
        return True
    return bool(connector.should_update_logs)


def restore_loader_states(fit_loop: Any) -> None:
    """Hand a restored checkpoint's saved train-loader position to the loader, if one is waiting.

    Lightning does this itself only when the loader is built after the restore; ``configure_optimizers``
    reading ``estimated_stepping_batches`` builds it before.
    """
    if getattr(fit_loop, "_combined_loader_states_to_load", None):
        fit_loop._load_combined_loader_states()


def fused_kernel_devices() -> set[str]:
    """Device types on which torch has fused optimizer kernels (``torch.optim.AdamW(fused=True)``)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:  # a torch without this helper: the devices every recent torch supports
        return {"cpu", "cuda"}
    return set(_get_fused_kernels_supported_devices())


def attn_implementation(config: Any) -> str | None:
    """The attention implementation transformers chose for a model config (``config._attn_implementation``)."""
    return getattr(config, "_attn_implementation", None)


def word_cache_resizer(tokenizer: Any) -> Any | None:
    """The Rust BPE/Unigram model's ``_resize_cache(capacity)`` of a fast tokenizer, or None when it has none.

    DNA sequences are each one unique "word" for that cache: it never hits and only holds memory.
    """
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    resize = getattr(model, "_resize_cache", None)
    return resize if callable(resize) else None


def wandb_init_settings(logger: Any) -> dict[str, Any] | None:
    """The keyword arguments a Lightning ``WandbLogger`` will pass to ``wandb.init`` (``logger._wandb_init``)."""
    init = getattr(logger, "_wandb_init", None)
    return init if isinstance(init, dict) else None
