/* TEST DOUBLE for TFLite's benchmark_model: a real ELF for the machine the tests run on (an "x86_64 emulator").
   It records its argv (one per line, then "--end--") in $FAKE_BENCH_ARGV_LOG and fails like the real tool when the
   --graph file cannot be opened. Then:
   - when $FAKE_BENCH_TIMES names a file of lines "<model file basename> <microseconds>", it looks up the --graph
     file's basename there and prints a complete run in the format of tests/fakes/device_run_output.txt, with
     --num_threads, --num_runs and --warmup_runs echoed and every timing (first, curr, min, max, avg, p5, median,
     p95, warm-up, inference average) equal to that value, std 0; a basename not in the file fails like the real
     tool on a model it cannot build;
   - otherwise it prints the captured output in $FAKE_BENCH_OUTPUT.
   What it does not prove: that a real benchmark_model accepts these flags or loads these models, its timings or
   their spread (here every run takes exactly the given time), its output format beyond the captured one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *flag(int argc, char **argv, const char *name, const char *fallback) {
  size_t n = strlen(name);
  const char *value = fallback;
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') value = argv[i] + n + 1;
  return value;
}

static int cannot_build(const char *graph) {
  printf("STARTING!\nGraph: [%s]\nERROR: Could not build model from the provided pointer.\n"
         "ERROR: Benchmarking failed.\n", graph ? graph : "");
  return 1;
}

/* The microseconds given for the basename of graph in the file times, or a negative number if none. */
static double lookup(const char *times, const char *graph) {
  const char *base = strrchr(graph, '/');
  base = base ? base + 1 : graph;
  FILE *f = fopen(times, "r");
  if (!f) return -1;
  char line[4096];
  double found = -1;
  while (found < 0 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    char *space = strrchr(line, ' ');  /* the name is everything before the last space */
    if (!space) continue;
    *space = '\0';
    if (strcmp(line, base) == 0) found = atof(space + 1);
  }
  fclose(f);
  return found;
}

static int timed_run(int argc, char **argv, const char *graph, double us) {
  const char *threads = flag(argc, argv, "--num_threads", "1");
  const char *runs = flag(argc, argv, "--num_runs", "50");
  const char *warmup = flag(argc, argv, "--warmup_runs", "1");
  printf("STARTING!\nLog parameter values verbosely: [0]\nNum threads: [%s]\nGraph: [%s]\n"
         "#threads used for CPU inference: [%s]\nLoaded model %s\nINFO: Initialized TensorFlow Lite runtime.\n"
         "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
         "INFO: Replacing 1 out of 1 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions "
         "for the whole graph.\nThe input model file size (MB): 0.0123\nInitialized session in 3.2ms.\n",
         threads, graph, threads, graph);
  printf("Running benchmark for at least %s iterations and at least 0 seconds but terminate if exceeding 150 "
         "seconds.\ncount=%s curr=%.3f\n\n", warmup, warmup, us);
  printf("Running benchmark for at least %s iterations and at least 0 seconds but terminate if exceeding 150 "
         "seconds.\ncount=%s first=%.3f curr=%.3f min=%.3f max=%.3f avg=%.3f std=0 p5=%.3f median=%.3f "
         "p95=%.3f\n\n", runs, runs, us, us, us, us, us, us, us, us);
  printf("Inference timings in us: Init: 3200, First inference: %.3f, Warmup (avg): %.3f, Inference (avg): %.3f\n"
         "Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.\n"
         "Memory footprint delta from the start of the tool (MB): init=1.5 overall=2.25\n"
         "Overall peak memory footprint (MB) via periodic monitoring: 6.5\n", us, us, us);
  return 0;
}

int main(int argc, char **argv) {
  const char *log = getenv("FAKE_BENCH_ARGV_LOG");
  if (log) {
    FILE *f = fopen(log, "a");
    for (int i = 0; i < argc; i++) { fputs(argv[i], f); fputc('\n', f); }
    fputs("--end--\n", f);
    fclose(f);
  }
  const char *graph = flag(argc, argv, "--graph", NULL);
  FILE *g = graph ? fopen(graph, "rb") : NULL;
  if (!g) return cannot_build(graph);
  fclose(g);
  /* with --profiling_output_csv_file the real tool writes its per-op tables to that file, not to its log */
  const char *csv = flag(argc, argv, "--profiling_output_csv_file", NULL);
  const char *csv_source = getenv("FAKE_BENCH_PROFILE_CSV");
  if (csv && csv_source) {
    FILE *in = fopen(csv_source, "r"), *out = fopen(csv, "w");
    char chunk[4096];
    size_t got;
    while (in && out && (got = fread(chunk, 1, sizeof chunk, in)) > 0) fwrite(chunk, 1, got, out);
    if (in) fclose(in);
    if (out) fclose(out);
  }
  const char *times = getenv("FAKE_BENCH_TIMES");
  if (times) {
    double us = lookup(times, graph);
    return us < 0 ? cannot_build(graph) : timed_run(argc, argv, graph, us);
  }
  FILE *o = fopen(getenv("FAKE_BENCH_OUTPUT"), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, o)) > 0) fwrite(buf, 1, n, stdout);
  fclose(o);
  return 0;
}
