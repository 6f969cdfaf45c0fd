"""Pruning: channel importance (``importance``, ``taylor``), the MAC level controller (``level``), the quality-gated
loop (``loop``) and one-shot pruning (``oneshot``), plans (``plan``), tfmot channel masks (``masking``, with tfmot's
internals kept in ``tfmot_adapter``), physical surgery (``surgery``) and the ``edgeprune prune`` pipeline
(``pipeline``, ``plots``). Builds on ``graph``, ``train`` and ``data``."""
