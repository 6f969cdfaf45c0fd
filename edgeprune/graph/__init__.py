"""The model as edgeprune sees it: its layer graph (``model_graph``), what each layer type means for channels and
cost (``layer_table``, the one declarative table), which channels are tied together (``coupling``) and the analytical
cost model (``cost``). Depends on nothing above it."""
