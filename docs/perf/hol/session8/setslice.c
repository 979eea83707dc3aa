// setslice PID NS: sets the EEVDF slice request (sched_runtime) of every thread of PID
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
struct attr { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio; uint64_t runtime, deadline, period; uint32_t umin, umax; };
int main(int argc, char** argv) {
  char path[64]; snprintf(path, sizeof path, "/proc/%s/task", argv[1]);
  DIR* d = opendir(path); struct dirent* e; int n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    struct attr a; memset(&a, 0, sizeof a); a.size = sizeof a; a.policy = 0; a.runtime = strtoull(argv[2], 0, 10);
    if (syscall(SYS_sched_setattr, atoi(e->d_name), &a, 0) != 0) { perror("sched_setattr"); return 1; }
    n++;
  }
  fprintf(stderr, "set %d threads\n", n);
  return 0;
}
