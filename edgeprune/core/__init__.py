"""The ground floor every other unit stands on: our exception types (``errors``); argument checks, the checked JSON
loader, atomic writes, the cache folder, input sizes, the one place TensorFlow is imported, text primitives and
phase timings (``checks``, ``files``, ``atomic``, ``cache``, ``sizes``, ``runtime``, ``text``, ``timing``); loading
and saving models (``modelio``)."""
