"""The ``edgeprune`` command line. Each command parses its options and calls one library function.

User errors (bad options, bad files) print one line, ``Error: ...``, on stderr and exit with code 2.
"""

import sys

import click

from edgeprune.core.errors import EdgepruneError
from edgeprune.prune.control import GATES
from edgeprune.prune.criteria import IMPORTANCE, METHODS
from edgeprune.prune.options import DEPLOY_DTYPES, PruneOptions
from edgeprune.prune.proposers import GRANULARITIES, STRATEGIES

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
        from edgeprune.core.sizes import parse_input_size

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
    from edgeprune.core.runtime import configure_process

    configure_process()  # the one place the command line configures the process (logs, devices, TF start)


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
@click.option("--latency-profile", type=click.Path(), default=None, metavar="PROFILE.json",
              help="Also predict per-layer and total latency with a profile from 'edgeprune calibrate'.")
def analyze(model, input_size, dtype, as_json, all_layers, latency_profile):
    """Per-layer MAC, weights, activations and memory bandwidth of MODEL, without running it.

    MODEL is a reference name (edsr, edsr_x3, edsr_x4, sid) or a path to a .keras file. Totals follow the paper's
    Table 1 convention (conv layers only, bias excluded); 'totals_all_layers' counts every layer.
    """
    from edgeprune.commands.analyze import analyze_command

    click.echo(analyze_command(model, input_size, dtype, as_json, all_layers, latency_profile))


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
    from edgeprune.commands.slim import slim as run_slim

    click.echo(run_slim(model, plan_path, out_path, input_size, as_json))


@cli.command()
@click.option("--model", "model", required=True,
              help="edsr or sid (reference configurations: the trained weights shipped with edgeprune are pruned, "
                   "see --baseline), or a trained .keras model (pruned as it is).")
@click.option("--baseline", type=click.Path(), default=None, metavar="shipped|train|FILE.keras",
              help="For a reference --model, what is pruned: shipped = the trained weights in "
                   "keras_models/weights/ (the default for edsr and sid; the file is checked against its "
                   "manifest), train = a baseline trained here with the preset first (cached in --out), or "
                   "FILE.keras = your trained baseline of --model (from 'edgeprune train' or 'edgeprune import').")
@click.option("--data", type=click.Path(), default=None, metavar="DIR",
              help="Training/validation data: a folder of HR images (EDSR; train/ alone is validated on the "
                   "built-in held-out photos), the SID Sony layout, or (SID) a train/ folder of sRGB photos turned "
                   "into low-light raw. Default: for shipped weights, the photos they learnt from "
                   "(keras_models/weights/photos/); otherwise generated dead-leaves images; scikit-image's photos "
                   "held out for validation.")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Table 1's cumulative options: A iterative prune, B + keep layer depth, C + MAC efficiency, "
                   "D + balanced residual groups. Default: the preset's (D; B for SID's quick preset).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="threshold",
              show_default=True,
              help="How channels are chosen: threshold = the paper's quality-gated loop with an adaptive importance "
                   "threshold; coarse = the same loop, each step keeping the least damaging of --candidates random "
                   "feature-map and/or kernel masks (Anwar & Sung); qr = once, pivoted-QR channel selection with "
                   "least-squares reconstruction of every consumer (needs a target), then --recover-steps of "
                   "fine-tuning (default none).")
@click.option("--granularity", type=click.Choice(GRANULARITIES), default=None,
              help="With --strategy coarse: prune feature maps, single kxk kernels, or both (default: both). Kernel "
                   "sparsity is counted in the MAC with zeros skipped; the exported dense model only sheds the "
                   "channels left without kernels, and the report gives both MACs.")
@click.option("--candidates", type=int, default=None,
              help="With --strategy coarse: random masks compared per step on a training batch (default: 8).")
@click.option("--importance", type=click.Choice(list(IMPORTANCE)), default=None,
              help="What ranks the channels: magnitude = filter norms normalised per layer (the paper's); taylor = "
                   "the loss change a channel's removal would cause to first order, measured on training patches at "
                   "every iteration (better for briefly trained models); qr = how linearly independent a channel's "
                   "feature map is of the others (pivoted QR on training patches). Default: the preset's "
                   "(magnitude; taylor for SID's quick preset).")
@click.option("--target-mac", type=float, default=None,
              help="Stop once the MAC is at most this fraction of the baseline's, in (0, 1). Default: 0.8, unless "
                   "--target-latency is given.")
@click.option("--target-latency", type=float, default=None,
              help="Stop once the predicted latency (from the latency profile) is at most this fraction of the "
                   "baseline's, in (0, 1); with --target-mac too, both must be met.")
@click.option("--latency-profile", "latency_profile", default=None, metavar="PROFILE.json|host|none",
              help="The device to prune for: every group keeps a width its conv kernels compute without waste "
                   "(whole output-channel tiles), option C ranks channels by importance per predicted "
                   "microsecond saved, and the level steps on predicted latency. PROFILE.json from 'edgeprune "
                   "calibrate' (--host or --device); 'host' = this machine, calibrated once (minutes) and cached "
                   "in ~/.cache/edgeprune ($EDGEPRUNE_CACHE_DIR); 'none' = any width, MAC only. Default: host for "
                   "the iterative loop (none with --channel-multiple or --one-shot).")
@click.option("--num-threads", type=int, default=None,
              help="Threads of the host profile and of the latency measurement in the report (default: the "
                   "profile's, or 1).")
@click.option("--deploy-dtype", type=click.Choice(DEPLOY_DTYPES), default=None,
              help="What the pruned model will be deployed as: the latency profile must price that dtype (a host "
                   "profile is calibrated for it: fp32 or int8), and the report measures the baseline and the "
                   "pruned model exported in it. Default: the profile's dtype (fp32 for the host).")
@click.option("--tolerance", "tolerance_psnr", type=float, default=0.05, show_default=True,
              help="Largest accepted PSNR drop below the baseline, in dB.")
@click.option("--ssim-tolerance", "tolerance_ssim", type=float, default=0.002, show_default=True,
              help="Largest accepted SSIM drop below the baseline.")
@click.option("--gate", type=click.Choice(GATES), default="baseline", show_default=True,
              help="What each iteration is judged against: the baseline's quality, or also the control's: the "
                   "unpruned baseline fine-tuned for as many steps as the candidate's history holds, in the loop's "
                   "own chunks of fine-tuning steps (one more chunk per budget reached, each cached), so extra "
                   "fine-tuning of a baseline far from converged cannot hide pruning damage.")
@click.option("--preset", "preset_name", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="Data sizes and training budgets: quick fits a 2-core CPU in minutes; full is the papers' scale.")
@click.option("--finetune-steps", type=int, default=None, help="Fine-tuning steps per iteration (default: the "
              "preset's).")
@click.option("--max-iterations", type=int, default=None, help="Most loop iterations (default: the preset's).")
@click.option("--recover-steps", type=int, default=None,
              help="With --strategy qr: fine-tune the reconstructed model under its channel masks for N steps (the "
                   "preset's fine-tuning settings); its control is then the baseline fine-tuned for the same N "
                   "steps. Default 0: the reconstruction as it is.")
@click.option("--distill", type=float, is_flag=False, flag_value=1.0, default=None, metavar="[WEIGHT]",
              help="Fine-tune the pruned model against the unpruned baseline's output too: the loss is L1 to the "
                   "ground truth plus WEIGHT times L1 to the baseline's output on the same patches (knowledge "
                   "distillation; WEIGHT >= 0, 1.0 when given bare). Applies to the loop's fine-tuning and to "
                   "--strategy qr's --recover-steps; the control still learns from the ground truth alone, and the "
                   "report says what the pruned model was fine-tuned against.")
@click.option("--seed", type=int, default=None,
              help="Seed of the run's random draws (default 0): fine-tuning patches, the control's, coarse masks, "
                   "Taylor and QR sample batches, and a baseline trained here. Runs that differ only in the seed "
                   "give the spread of the figures.")
@click.option("--resume", is_flag=True, help="Continue a killed run in --out: no accepted iteration is lost.")
@click.option("--one-shot", is_flag=True, help="Instead: prune once by L1 filter norm, no training or data.")
@click.option("--channel-ratio", type=float, default=None,
              help="With --one-shot: fraction of the units of every prunable channel group to remove, in (0, 1).")
@click.option("--channel-multiple", type=int, default=1, show_default=True,
              help="Keep every pruned conv's output channels a multiple of N (for example 8 for ARM NEON "
                   "kernels, 16 for AVX2 and 32 for AVX-512 XNNPACK on x86), for users without a latency profile: "
                   "widths between multiples cost as much as the next multiple. Replaces the default host "
                   "profile.")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              help="Output folder: pruned.keras, plan.json, report.json (and channels.png, tradeoff.png).")
@click.option("--input-size", type=InputSize(), default=None, help="With --one-shot: input size for the cost "
              "figures (HxW).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a summary.")
def prune(**options):
    """Prune whole channels of MODEL and write the physically slimmer model, its plan and a report.

    By default this runs the paper's iterative loop: raise an adaptive threshold on channel importance
    (normalised filter magnitudes, or with --importance taylor the measured first-order loss change), fine-tune
    the masked model, measure PSNR/SSIM on held-out images, keep the step if quality stays within the
    tolerance and roll back with a smaller step if not, until --target-mac (and/or --target-latency) is met. It also
    fine-tunes the unpruned baseline for the same number of steps (the control), so extra training is not credited
    to pruning; --gate control also judges every iteration against the control at that iteration's steps.

    Widths are chosen for a device: by default this host (its latency profile is calibrated once and cached), so
    every removed channel is time saved. The report measures the baseline's and the pruned model's latency on this
    host (fp32 TFLite, LiteRT/XNNPACK) beside the MAC ratio.

    Channels are pruned in coupled groups (residual trunks, concatenations and depth-to-space blocks stay
    consistent). Progress goes to stderr; the summary (or --json) to stdout.

    --strategy coarse (random masks, Anwar & Sung 2016) and --strategy qr (pivoted-QR selection with
    least-squares reconstruction, Zhang et al., arXiv 1908.03266) run two other pruning methods through the same
    plan, surgery, control, report and latency measurement, so all three can be compared on one model.
    """
    from edgeprune.commands.prune import prune as run_prune

    click.echo(run_prune(PruneOptions.from_cli(options), echo=lambda text: click.echo(text, err=True)))


@cli.command()
@click.argument("model")
@click.option("--tflite", "to_tflite", is_flag=True, default=True,
              help="The output format: TFLite, the default and only one (the flag may be left out).")
@click.option("--out", "out_path", required=True, metavar="MODEL.tflite", help="Where to write the .tflite file; "
              "the verification report goes beside it as MODEL.tflite.json.")
@click.option("--input-size", type=InputSize(), default=None,
              help="Fixed input size HxW of the exported graph (needed when the model's input is dynamic; "
                   "reference models default to the paper's size).")
@click.option("--quantize", type=click.Choice(["none", "fp16", "dynamic", "int8"]), default="none",
              show_default=True, help="none = fp32; fp16 = fp16 weights; dynamic = int8 weights, float "
                                      "activations; int8 = full integer (float input/output), needs --calib-data.")
@click.option("--calib-data", type=click.Path(), default=None, metavar="DIR",
              help="Representative inputs for int8: images (RGB, or turned into packed RGGB raw for 4-channel "
                   "models) or .npy arrays HxWxC.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
def export(model, to_tflite, out_path, input_size, quantize, calib_data, as_json):
    """Convert MODEL (a .keras file, or edsr/sid with random weights) to TFLite and verify the result.

    Verification runs the .tflite with LiteRT on a real photo and compares it with Keras (max abs error, PSNR),
    counts the ops (Flex ops are refused) and checks that the flatbuffer's conv weights, MAC and conv tensor
    shapes equal the cost model's. A failed check writes nothing.
    """
    from edgeprune.commands.export import export as run_export

    click.echo(run_export(model, out_path, input_size, quantize, calib_data, as_json))


@cli.command()
@click.argument("model_paths", metavar="MODEL.tflite...", nargs=-1)
@click.option("--host", is_flag=True, help="Benchmark on this machine through LiteRT with XNNPACK.")
@click.option("--device", "device", is_flag=False, flag_value="", default=None, metavar="[SERIAL]",
              help="Benchmark on an Android device or emulator through adb and benchmark_model (the only attached "
                   "device, or SERIAL).")
@click.option("--parse-log", "parse_log", type=click.Path(), default=None, metavar="FILE",
              help="Parse a benchmark_model output saved from your own run into the result schema.")
@click.option("--num-threads", type=int, default=1, show_default=True)
@click.option("--warmup-runs", type=int, default=1, show_default=True)
@click.option("--num-runs", type=int, default=50, show_default=True)
@click.option("--max-secs", type=float, default=0.0, help="Stop the timed runs after this many seconds (0: no "
              "limit on the host, 150 on a device).")
@click.option("--latency-profile", "latency_profile", type=click.Path(), default=None,
              metavar="PROFILE.json", help="Host: print the calibrated model's predicted latency beside the measured "
                                           "one for each model (models are then timed interleaved in one process).")
@click.option("--benchmark-binary", type=click.Path(), default=None, metavar="PATH",
              help="Device: benchmark_model for the device's ABI (default: "
                   "$EDGEPRUNE_BENCHMARK_MODEL_DIR/<abi>/benchmark_model, ~/.cache/edgeprune/benchmark_model/<abi>/).")
@click.option("--adb", "adb_path", type=click.Path(), default=None, help="Device: path of the adb client.")
@click.option("--use-gpu", is_flag=True, help="Device: run with the GPU delegate.")
@click.option("--use-nnapi", is_flag=True, help="Device: run with the NNAPI delegate.")
@click.option("--no-xnnpack", is_flag=True, help="Device: plain TFLite CPU kernels instead of XNNPACK.")
@click.option("--op-profiling", is_flag=True, help="Device: per-op timing tables.")
@click.option("--big-cores", is_flag=True, help="Device: pin to the fastest cores (taskset, from cpufreq).")
@click.option("--memory-traffic", is_flag=True, help="DRAM bytes per inference. Device: cache refills counted "
              "with simpleperf around the runs. Host: LiteRT run under Valgrind's Cachegrind (apt-get install "
              "valgrind) with a simulated phone cache hierarchy (see --cache), beside the analytical BW of the same "
              "graph.")
@click.option("--cache", "cache_specs", multiple=True, metavar="'LEVEL=SIZE,WAYS,LINE ...'",
              help="Host --memory-traffic: the simulated caches replacing the default's levels, LEVEL one of L1I, "
                   "L1D, LL (e.g. --cache 'L1D=32K,8,64 LL=2M,16,64'; repeatable). Default: 64 KiB 4-way L1I and "
                   "L1D, 2 MiB 16-way LL, 64 B lines (a Cortex-A76-class core with a 2 MiB L3).")
@click.option("--input-size", type=InputSize(), default=None,
              help="Host: resize the model's input to HxW before running (default: the file's own size; 16x16 with "
                   "--memory-traffic, where Cachegrind runs LiteRT thousands of times slower than native).")
@click.option("--timeout", "timeout_s", type=float, default=None,
              help="Give up on a device run, or on one model's Cachegrind measurement (--host --memory-traffic), "
                   "after this many seconds (default: 900); it is stopped and reported.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (one schema for host and device).")
def bench(model_paths, host, device, parse_log, num_threads, warmup_runs, num_runs, max_secs, latency_profile,
          benchmark_binary, adb_path, use_gpu, use_nnapi, no_xnnpack, op_profiling, big_cores, memory_traffic,
          cache_specs, input_size, timeout_s, as_json):
    """Measure latency and memory of .tflite models, with benchmark_model's semantics.

    Reports init time, first inference, warm-up average, inference avg/std/min/max/median/p5/p95 (us), memory and,
    on a device, how many nodes each delegate took (a silent CPU fallback is reported as a warning).
    """
    from edgeprune.commands.bench import bench_command

    text, warnings = bench_command(model_paths, as_json, host=host, device=device, parse_log=parse_log,
                                   num_threads=num_threads, warmup_runs=warmup_runs, num_runs=num_runs,
                                   max_secs=max_secs, latency_profile=latency_profile,
                                   benchmark_binary=benchmark_binary, adb_path=adb_path, use_gpu=use_gpu,
                                   use_nnapi=use_nnapi, use_xnnpack=not no_xnnpack, op_profiling=op_profiling,
                                   big_cores=big_cores, memory_traffic=memory_traffic, timeout_s=timeout_s,
                                   input_size=input_size, cache_specs=cache_specs)
    click.echo(text)
    for line in warnings:
        click.echo(line, err=True)


@cli.command()
@click.option("--host", is_flag=True, help="Calibrate this machine (LiteRT with XNNPACK).")
@click.option("--device", "device", is_flag=False, flag_value="", default=None, metavar="[SERIAL]",
              help="Calibrate an Android device or emulator through adb and benchmark_model (the only attached "
                   "device, or SERIAL).")
@click.option("--out", "out_path", required=True, metavar="PROFILE.json", help="Where to write the profile.")
@click.option("--model", "models", multiple=True, help="Also cover this model's layer shapes (.keras or a "
              "reference name; repeatable). EDSR and SID are always covered.")
@click.option("--input-size", type=InputSize(), default="128x128", show_default=True,
              help="Input size at which the single-layer models are built.")
@click.option("--num-threads", type=int, default=1, show_default=True)
@click.option("--runs", type=int, default=5, show_default=True, help="Timed runs per layer (median kept).")
@click.option("--only-given-models", is_flag=True, help="Cover only the --model layers (and the channel sweep), "
              "not EDSR and SID.")
@click.option("--benchmark-binary", type=click.Path(), default=None, metavar="PATH",
              help="Device: benchmark_model for the device's ABI (default: "
                   "$EDGEPRUNE_BENCHMARK_MODEL_DIR/<abi>/benchmark_model, ~/.cache/edgeprune/benchmark_model/<abi>/).")
@click.option("--adb", "adb_path", type=click.Path(), default=None, help="Device: path of the adb client.")
@click.option("--quantize", type=click.Choice(["none", "fp16", "int8"]), default="none", show_default=True,
              help="What the single-layer models are converted to, and so the dtype the profile prices (bytes at "
                   "that dtype's size): none = fp32; int8 = full integer, for models exported by 'edgeprune "
                   "export --quantize int8' (each single-layer model with int8 input and output, its op alone, and "
                   "the float input's QUANTIZE and output's DEQUANTIZE timed apart); fp16 = fp16 weights, on a device only (this host's XNNPACK runs fp16 "
                   "models in fp32).")
def calibrate(host, device, out_path, models, input_size, num_threads, runs, only_given_models, benchmark_binary,
              adb_path, quantize):
    """Time single-layer TFLite models on this machine (--host) or on an Android device or emulator (--device,
    with benchmark_model through adb) and fit a roofline latency model (MAC/s, bytes/s, per-op overhead, conv
    output-channel tiles).

    Prune for that device with 'edgeprune prune --latency-profile PROFILE.json'; also used by 'edgeprune analyze
    --latency-profile', 'edgeprune bench --host --latency-profile' (a host profile) and 'edgeprune report
    --latency-profile' (which predicts the rows of the profile's target).
    """
    from edgeprune.commands.calibrate import calibrate_command, check_calibrate_options
    from edgeprune.commands.render import profile_table

    dtype = {"none": "fp32"}.get(quantize, quantize)
    check_calibrate_options(out_path, models, num_threads, runs, not only_given_models, host, device,
                            benchmark_binary, adb_path, dtype)  # before the bar
    with click.progressbar(length=1, label="timing single-layer models", file=sys.stderr) as bar:
        def progress(done, total):
            bar.length = total
            bar.update(done - bar.pos)

        profile = calibrate_command(out_path, list(models), input_size, num_threads, runs, progress,
                                    include_references=not only_given_models, host=host, device=device,
                                    benchmark_binary=benchmark_binary, adb_path=adb_path, dtype=dtype)
    click.echo(profile_table(profile))
    click.echo(f"wrote {out_path}")


@cli.command()
@click.argument("results", nargs=-1, required=True, metavar="RESULT.json...")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Folder for report.md, report.json and plots.")
@click.option("--latency-profile", type=click.Path(), default=None, metavar="PROFILE.json",
              help="Add the calibrated model's predictions to the rows of the profile's target (a host profile "
                   "predicts host runs; device rows get none).")
@click.option("--baseline", "baselines", multiple=True, metavar="MODEL.tflite",
              help="A baseline among the results' models (path or file name; repeatable): each other model with the "
                   "same ops, input size, dtype and simulated caches gets its traffic, BW and MAC ratios against it.")
def report(results, out_dir, latency_profile, baselines):
    """Join analytical cost, predictions and measured latency (host and device) of a set of models.

    RESULT.json files come from 'edgeprune bench ... --json' (one result or a list). Writes a table
    (report.md, report.json) and plots of measured latency against conv MAC and against conv BW; results of
    'bench --host --memory-traffic' add a table of simulated DRAM traffic beside the analytical BW and
    traffic_vs_bw.png (per model: Cachegrind counts per function, not per layer).
    """
    from edgeprune.commands.report import TRAFFIC_PLOT, build_report

    rep = build_report(results, out_dir, latency_profile, baselines)
    click.echo(rep["table"])
    traffic = f", {TRAFFIC_PLOT}" if any(r["traffic"] for r in rep["rows"]) else ""
    click.echo(f"\nwrote {out_dir}/report.md, report.json, latency_vs_mac.png, latency_vs_bw.png{traffic}")


@cli.group("import")
def import_group():
    """Import a trained checkpoint of another framework as a tf_keras model edgeprune can prune.

    Every import is checked before anything is written: the original network, run by its own framework, and the
    imported model must agree on a real photo within 1e-5 (max difference relative to the output's peak).
    Writes MODEL.keras and MODEL.import.json (source files and SHA-256, configuration, conversions, the check).
    Then: edgeprune prune --model MODEL.keras --data YOUR_DATA/ --out DIR.
    """


@import_group.command("edsr")
@click.argument("checkpoint", metavar="CHECKPOINT")
@click.option("--out", "out_path", required=True, metavar="MODEL.keras", help="Where to write the model.")
@click.option("--scale", type=int, default=None, help="Check the upsampling factor (2, 3, 4, 8); it is read from "
              "the upsampler's tensors.")
@click.option("--res-scale", type=float, default=None, help="Residual scaling of the blocks, which a state dict "
              "does not store (default: 0.1 for the full EDSR's 256 features x 32 blocks, else 1).")
@click.option("--rgb-range", type=float, default=None, help="Pixel range the network was trained on (default: read "
              "from sub_mean, 255 or 1; 255 when the model has no mean shift).")
@click.option("--json", "as_json", is_flag=True, help="Print the import record as JSON.")
def import_edsr(checkpoint, out_path, scale, res_scale, rgb_range, as_json):
    """Import an EDSR-PyTorch state dict: .pt/.pth (read with torch's weights-only loading, which refuses pickled
    code; needs the edgeprune[torch] extra) or .safetensors (no torch needed).

    Keys as EDSR-PyTorch names them (head.0, body.{i}.body.{0,2}, body.{n}, tail.0.{k}, tail.1, sub_mean/add_mean);
    a 'module.' prefix and a {'state_dict': ...} wrapper are undone. Widths, block count and scale come from the
    tensors. The check runs in PyTorch when it is installed, else in a numpy transcription of EDSR-PyTorch's forward.
    """
    from edgeprune.commands.import_checkpoint import import_command

    click.echo(import_command("edsr", checkpoint, out_path, as_json, scale=scale, res_scale=res_scale,
                              rgb_range=rgb_range))


@import_group.command("sid")
@click.argument("checkpoint", metavar="CHECKPOINT_PREFIX")
@click.option("--out", "out_path", required=True, metavar="MODEL.keras", help="Where to write the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the import record as JSON.")
def import_sid(checkpoint, out_path, as_json):
    """Import the original Learning-to-See-in-the-Dark TensorFlow (TF1, slim) Sony checkpoint: its prefix
    (checkpoint/Sony/model.ckpt), its .index file or its folder.

    Variables g_convK_J/weights|biases, g_conv10 and the transposed-conv filters Variable..Variable_3 (up6..up9);
    optimizer slots are ignored. The first conv's input channels are reordered from the original packing
    (R, G, B, G) to edgeprune's (R, G1, G2, B). The check runs the original graph in tf.compat.v1.
    """
    from edgeprune.commands.import_checkpoint import import_command

    click.echo(import_command("sid", checkpoint, out_path, as_json))


@cli.command()
@click.option("--model", "model", required=True, help="edsr, sid (reference configurations, trained from scratch) "
              "or a .keras file to continue training.")
@click.option("--data", type=click.Path(), default=None, metavar="DIR",
              help="EDSR: a DIV2K-style folder of HR images (train/ and val/ subfolders, or every 10th file held "
                   "out). Default: generated dead-leaves training images and the real photos shipped with "
                   "scikit-image for validation.")
@click.option("--out", "out_path", required=True, metavar="MODEL.keras", help="Where to save the trained model "
              "(its report goes to MODEL.keras.json).")
@click.option("--preset", "preset_name", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--steps", type=int, default=None, help="Training steps (default: the preset's).")
@click.option("--batch-size", type=int, default=None)
@click.option("--patch", type=int, default=None, help="Input-side patch size (EDSR: LR pixels; SID: packed pixels).")
@click.option("--resume", is_flag=True, help="Continue a killed run from its last epoch checkpoint.")
@click.option("--seed", type=int, default=None,
              help="Seed of the initial weights and the training patches (default 0): another seed, another "
                   "baseline of the same recipe.")
def train(model, data, out_path, preset_name, steps, batch_size, patch, resume, seed):
    """Train MODEL with L1 loss and Adam (step schedule) under TensorFlow's distribution strategy.

    Uses every GPU (MirroredStrategy) or several hosts (MultiWorkerMirroredStrategy via TF_CONFIG) when present.
    Reports validation PSNR/SSIM on held-out images.
    """
    from edgeprune.commands.train import train as run_train

    click.echo(run_train(model, out_path, data, preset_name, steps, batch_size, patch, resume, seed=seed))


def main():
    cli.main(prog_name="edgeprune")


if __name__ == "__main__":
    main()
