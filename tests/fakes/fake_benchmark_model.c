/* TEST DOUBLE for TFLite's benchmark_model: a real ELF for the machine the tests run on (an "x86_64 emulator").
   It records its argv (one per line, then "--end--") in $FAKE_BENCH_ARGV_LOG, fails like the real tool when the
   --graph file cannot be opened, and otherwise prints the captured output in $FAKE_BENCH_OUTPUT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  const char *log = getenv("FAKE_BENCH_ARGV_LOG");
  if (log) {
    FILE *f = fopen(log, "a");
    for (int i = 0; i < argc; i++) { fputs(argv[i], f); fputc('\n', f); }
    fputs("--end--\n", f);
    fclose(f);
  }
  const char *graph = NULL;
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "--graph=", 8) == 0) graph = argv[i] + 8;
  FILE *g = graph ? fopen(graph, "rb") : NULL;
  if (!g) {
    printf("STARTING!\nGraph: [%s]\nERROR: Could not build model from the provided pointer.\n"
           "ERROR: Benchmarking failed.\n", graph ? graph : "");
    return 1;
  }
  fclose(g);
  FILE *o = fopen(getenv("FAKE_BENCH_OUTPUT"), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, o)) > 0) fwrite(buf, 1, n, stdout);
  fclose(o);
  return 0;
}
