// A WASI command that uses the file system the way programs do, through
// wasi-libc: read, list, stat, write, append, create and remove
// directories, rename, and the refusals (a read-only mount, a path out of
// its mount). host/testdata/Makefile builds it as a preview-1 module
// (files.wasm) and as a wasi:cli/command component through the preview-1
// adapter (files-component.wasm); the host's tests run both on the same
// directories and compare what they print.
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cat(const char *path) {
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("read %s: %s\n", path, strerror(errno));
		return;
	}
	char buf[512];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	printf("read %s: %s", path, buf);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *path) {
	DIR *d = opendir(path);
	if (!d) {
		printf("list %s: %s\n", path, strerror(errno));
		return;
	}
	char *names[64];
	int n = 0;
	struct dirent *e;
	while (n < 64 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			names[n] = malloc(strlen(e->d_name) + 2);
			strcpy(names[n], e->d_name);
			if (e->d_type == DT_DIR) strcat(names[n], "/");
			n++;
		}
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp);
	for (int i = 0; i < n; i++) {
		printf("list %s: %s\n", path, names[i]);
		free(names[i]);
	}
}

static void info(const char *path) {
	struct stat st;
	if (stat(path, &st) != 0) {
		printf("stat %s: %s\n", path, strerror(errno));
		return;
	}
	printf("stat %s: %lld bytes, %s\n", path, (long long)st.st_size, S_ISDIR(st.st_mode) ? "directory" : "file");
}

static void result(const char *what, int ok) { printf("%s: %s\n", what, ok ? "ok" : strerror(errno)); }

int main(int argc, char **argv) {
	cat("/in/greeting.txt");
	list("/in");
	info("/in/greeting.txt");
	info("/in/sub");
	cat("/in/missing.txt");
	cat("/in/../outside.txt");
	FILE *w = fopen("/in/new.txt", "w");
	result("create /in/new.txt", w != NULL);

	FILE *o = fopen("/out/result.txt", "w");
	result("create /out/result.txt", o != NULL);
	if (o) {
		fprintf(o, "written by %s\n", argc > 1 ? argv[1] : "?");
		fclose(o);
	}
	o = fopen("/out/result.txt", "a");
	if (o) {
		fprintf(o, "appended\n");
		fclose(o);
	}
	cat("/out/result.txt");
	result("mkdir /out/sub", mkdir("/out/sub", 0755) == 0);
	result("mkdir /out/sub again", mkdir("/out/sub", 0755) == 0);
	result("rename", rename("/out/result.txt", "/out/sub/moved.txt") == 0);
	list("/out/sub");
	info("/out/sub/moved.txt");
	result("rmdir /out/sub (not empty)", rmdir("/out/sub") == 0);
	result("unlink", unlink("/out/sub/moved.txt") == 0);
	result("rmdir /out/sub", rmdir("/out/sub") == 0);
	list("/out");
	return 3;
}
