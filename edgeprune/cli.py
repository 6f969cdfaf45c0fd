"""The ``edgeprune`` command line. Each command parses its options and calls one library function.

User errors (bad options, bad files) print one line, ``Error: ...``, on stderr and exit with code 2.
"""

import json
import sys

import click

from edgeprune.errors import EdgepruneError

_DTYPES = ["fp32", "fp16", "int8"]


class _Group(click.Group):
    """A click group whose usage errors and EdgepruneErrors are one line on stderr and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(2)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except EdgepruneError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


class InputSize(click.ParamType):
    name = "HxW"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from edgeprune.sizes import parse_input_size

        try:
            return parse_input_size(value)
        except EdgepruneError as exc:
            self.fail(str(exc), param, ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edgeprune")
def cli():
    """edgeprune: architecture-aware structured pruning of image-quality CNNs (EDSR, SID) for phones.

    Analyse a model's cost, prune whole channels, export TFLite and measure it on the host or a device.
    """


@cli.command()
@click.argument("model")
@click.option("--input-size", type=InputSize(), default=None,
              help="Spatial size HxW of the model's input tensor (EDSR: the low-res image; SID: the packed raw, "
                   "half the sensor size). Default: the paper's size for edsr (1020x1020) and sid (1424x2128), "
                   "the model's own static size for a .keras file.")
@click.option("--dtype", type=click.Choice(_DTYPES), default="fp32", show_default=True,
              help="Bytes per element for the BW figures: fp32=4, fp16=2, int8=1 (weights and activations).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of the table.")
@click.option("--all-layers", is_flag=True, help="List every layer in the table, not only conv/dense layers.")
def analyze(model, input_size, dtype, as_json, all_layers):
    """Per-layer MAC, weights, activations and memory bandwidth of MODEL, without running it.

    MODEL is a reference name (edsr, edsr_x3, edsr_x4, sid) or a path to a .keras file. Totals follow the paper's
    Table 1 convention (conv layers only, bias excluded); 'totals_all_layers' counts every layer.
    """
    from edgeprune.analyze import analyze as run_analyze
    from edgeprune.render import cost_table

    report = run_analyze(model, input_size, dtype)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(cost_table(report, all_layers=all_layers))


@cli.command()
@click.argument("model")
@click.option("--plan", "plan_path", required=True, metavar="PLAN.json", help="A plan written by 'edgeprune prune'.")
@click.option("--out", "out_path", required=True, metavar="SLIM.keras", help="Where to save the slim model.")
@click.option("--input-size", type=InputSize(), default=None, help="Input size for the cost figures (HxW).")
@click.option("--json", "as_json", is_flag=True, help="Print the cost totals as JSON.")
def slim(model, plan_path, out_path, input_size, as_json):
    """Physically remove the channels a plan prunes from MODEL and save the slimmer model.

    MODEL must be the model the plan was made for (a reference name or a .keras path), not an already slim one.
    """
    from edgeprune.render import before_after
    from edgeprune.surgery import slim_file

    summary = slim_file(model, plan_path, out_path, input_size)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(before_after(summary["original"]["totals"], summary["pruned"]["totals"]))
        click.echo(f"\nwrote {out_path}")


@cli.command()
@click.option("--model", "model", required=True, help="edsr, sid (reference configurations) or a .keras path.")
@click.option("--one-shot", is_flag=True, help="Prune once by L1 filter norm, without fine-tuning.")
@click.option("--channel-ratio", type=float, default=None,
              help="With --one-shot: fraction of the units of every prunable channel group to remove, in (0, 1).")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              help="Output folder for pruned.keras, plan.json and report.json.")
@click.option("--input-size", type=InputSize(), default=None, help="Input size for the cost figures (HxW).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a summary.")
def prune(model, one_shot, channel_ratio, out_dir, input_size, as_json):
    """Prune whole channels of MODEL and write the physically slimmer model, its plan and a report.

    Channels are pruned in coupled groups (residual trunks, concatenations and depth-to-space blocks stay
    consistent); the report gives the cost before and after and checks that the slim model computes exactly what
    the masked model computes.
    """
    from edgeprune.errors import InvalidArgumentError
    from edgeprune.oneshot import one_shot_prune
    from edgeprune.render import before_after

    if not one_shot:
        raise InvalidArgumentError("only one-shot pruning is available in this version: add --one-shot "
                                   "--channel-ratio R")
    if channel_ratio is None:
        raise InvalidArgumentError("--one-shot needs --channel-ratio R with 0 < R < 1")
    report = one_shot_prune(model, channel_ratio, out_dir, input_size)
    if as_json:
        click.echo(json.dumps({k: v for k, v in report.items() if k not in ("original", "pruned")} |
                              {"original": {"totals": report["original"]["totals"]},
                               "pruned": {"totals": report["pruned"]["totals"]}}))
        return
    size = "x".join(map(str, report["original"]["input_size"] or [])) or "static"
    click.echo(f"{report['model']}: one-shot L1 pruning of {channel_ratio:.0%} of every prunable group, at input {size}")
    click.echo(before_after(report["original"]["totals"], report["pruned"]["totals"]))
    eq = report["equivalence"]
    click.echo(f"\nmasked vs slim model on random input {eq['input_shape']}: max relative difference "
               f"{eq['max_rel_diff']:.2e}; plan prediction matches the slim model: "
               f"{report['plan_prediction']['matches_pruned']}")
    click.echo(f"wrote {out_dir}/pruned.keras, plan.json, report.json")


def main():
    cli.main(prog_name="edgeprune")


if __name__ == "__main__":
    main()
