/* The per-call probe: N getppid() system calls timed from inside the process, so the
 * figure is what a traced program pays per call, without any tool's start-up or drain.
 * Usage: getppid N OUT   (writes nanoseconds per call to OUT) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: getppid N OUT\n");
		return 2;
	}
	long n = atol(argv[1]);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	FILE *f = fopen(argv[2], "w");
	if (!f)
		return 1;
	fprintf(f, "%.0f\n", ns / n);
	return fclose(f) != 0;
}
