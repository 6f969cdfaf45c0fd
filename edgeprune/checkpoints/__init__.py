"""Importing trained checkpoints of other frameworks into edgeprune's tf_keras architectures.

``edsr_torch`` reads EDSR-PyTorch state dicts (``state_dict`` reads ``.pt``/``.pth`` weights-only and
``.safetensors``) and ``torch_reference`` defines that network in PyTorch, as EDSR-PyTorch does, to check the import;
``sid_tf1`` reads the original "Learning to See in the Dark" TF1 checkpoint and builds its graph with
``tf.compat.v1`` for the same purpose. Each returns a :class:`~edgeprune.checkpoints.converted.Converted`;
``verify`` compares the two networks on a real photo and ``importer`` writes the model and its record only when
they agree.
"""
