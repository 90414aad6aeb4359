/* A compute-bound WASI command for bench/codegen.sh: recursive calls
   (fib), then a loop of formatting, hashing, malloc and free over a table
   of strings, closer to what an interpreter does. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
/* a hash-table and string workload, closer to an interpreter's */
static uint64_t strwork(int rounds) {
  uint64_t h = 1469598103934665603ULL; char buf[64];
  char **tab = calloc(4096, sizeof(char*));
  for (int r = 0; r < rounds; r++) {
    int n = snprintf(buf, sizeof buf, "key-%d-%d", r, r * 7);
    uint32_t k = 0; for (int i = 0; i < n; i++) k = k * 31 + buf[i];
    char **slot = &tab[k & 4095];
    if (*slot) free(*slot);
    *slot = strdup(buf);
    for (int i = 0; i < n; i++) { h ^= (unsigned char)buf[i]; h *= 1099511628211ULL; }
  }
  return h;
}
int main(int argc, char **argv) {
  printf("%u %llu\n", fib(32), (unsigned long long)strwork(2000000));
  return 0;
}
