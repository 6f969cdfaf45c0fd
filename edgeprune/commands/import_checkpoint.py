"""``edgeprune import edsr|sid CHECKPOINT --out MODEL.keras``: a trained checkpoint of another framework as a
verified tf_keras model (:mod:`edgeprune.checkpoints.importer`), and what the command prints."""

import json


def import_command(architecture: str, source, out, as_json: bool = False, **options) -> str:
    """Imports ``source`` into ``out`` (nothing is written unless the numeric check passes) and returns the record
    as JSON or :func:`import_summary`."""
    from edgeprune.checkpoints.importer import import_checkpoint, record_path

    record = import_checkpoint(architecture, source, out, **options)
    return json.dumps(record) if as_json else import_summary(record, out, record_path(out))


def import_summary(record: dict, out, record_file) -> str:
    """The import for people: what was read, the configuration, the conversions and the check."""
    config, check = record["config"], record["verification"]
    described = {k: ([round(m, 6) for m in v] if k == "rgb_mean" and v else v) for k, v in config.items()
                 if not k.endswith("_source") and k != "block_features"}
    lines = [f"{record['source']} ({record['architecture']}, {sum(f['bytes'] for f in record['files']):,} bytes, "
             f"sha256 {record['files'][0]['sha256'][:16]}...) -> {out}",
             "configuration: " + ", ".join(f"{k}={v}" for k, v in described.items())]
    lines += [f"  {k.removesuffix('_source')}: {v}" for k, v in config.items() if k.endswith("_source")]
    lines += ["conversions: " + "; ".join(record["conversions"])]
    if record["ignored"]:
        lines.append("ignored: " + ", ".join(record["ignored"]))
    lines.append(f"check: against {check['reference']} on {check['input']} {check['input_shape']}: max relative "
                 f"difference {check['max_relative_difference']:.2e} (limit {check['limit']:g}), max abs "
                 f"{check['max_abs_difference']:.2e}")
    lines.append(f"wrote {out} and {record_file}")
    return "\n".join(lines)
