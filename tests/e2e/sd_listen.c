/* A socket-activated server written against libsystemd, as third-party programs are:
 * it finds its sockets with sd_listen_fds_with_names(3) (which checks LISTEN_PID), prints
 * "NAME=FD" for each, then answers every connection on the stream socket named argv[1]
 * with "c NAME PID\n". Used by tests/e2e/sockets_test.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

int main(int argc, char** argv) {
  char** names = NULL;
  int n = sd_listen_fds_with_names(1, &names);
  if (n <= 0) {
    printf("no sockets (%d)\n", n);
    return 3;
  }
  int serve = -1;
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    printf("%s=%d%s\n", names[i], fd, sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0 ? " listening" : "");
    if (argc > 1 && strcmp(names[i], argv[1]) == 0) serve = fd;
  }
  fflush(stdout);
  if (serve < 0) return 4;
  char reply[300];
  int len = snprintf(reply, sizeof reply, "c %s %d\n", argv[1], (int)getpid());
  for (;;) {
    int c = accept(serve, NULL, NULL);
    if (c < 0) continue;
    if (write(c, reply, (size_t)len) < 0) perror("write");
    close(c);
  }
}
