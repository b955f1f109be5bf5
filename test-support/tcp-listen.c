/*
 * tcp-listen ADDR PORT BACKLOG PROG [ARG...]: a tiny inetd for the test images.
 *
 * busybox httpd listens with a backlog of 9 (httpd.c: xlisten(n, 9)). Under the proxy tests'
 * load (40 keep-alive clients through HAProxy, which opens a new connection to the app for every
 * request because httpd closes each one) that accept queue overflows thousands of times a
 * minute: the kernel drops SYNs, a connection waits 1 s, 3 s or 7 s for its retransmit, and now
 * and then HAProxy's four connect attempts (5 s each) all time out. That is the test app, not the
 * deploy. Real servers listen with a backlog in the hundreds (nginx 511, Node 511); so does this.
 *
 * It listens on ADDR:PORT with BACKLOG, and for each connection forks PROG with the connection on
 * stdin and stdout (`httpd -i`: busybox httpd's inetd mode). Children are reaped by the kernel
 * (SIGCHLD ignored). SIGTERM ends the listener at once; requests in flight finish in their child.
 * Built statically by test-support/images.ts, with gcc and libc6-dev.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tcp-listen ADDR PORT BACKLOG PROG [ARG...]\n");
    return 2;
  }
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
    fprintf(stderr, "tcp-listen: not an IPv4 address: %s\n", argv[1]);
    return 2;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, atoi(argv[3])) != 0) {
    perror("tcp-listen");
    return 1;
  }
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    if (connection < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) usleep(10000);
      continue;
    }
    pid_t child = fork();
    if (child == 0) {
      close(listener);
      signal(SIGCHLD, SIG_DFL);
      dup2(connection, 0);
      dup2(connection, 1);
      if (connection > 1) close(connection);
      execv(argv[4], argv + 4);
      perror("tcp-listen: exec");
      _exit(127);
    }
    close(connection);
  }
}
