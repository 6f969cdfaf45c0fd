"""``edgeprune slim``: replay a plan on the model it was made for, save the slim model, print its cost."""

import json


def slim(model, plan_path, out_path, input_size=None, as_json: bool = False) -> str:
    """Applies the plan in ``plan_path`` to ``model`` and saves the slim model to ``out_path``; returns what the
    command prints (the cost totals before and after, as a table or JSON)."""
    from edgeprune.commands.render import slim_summary
    from edgeprune.prune.surgery import slim_file

    summary = slim_file(model, plan_path, out_path, input_size)
    return json.dumps(summary) if as_json else slim_summary(summary, out_path)
