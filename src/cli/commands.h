/*
 * The keyward CLI's commands: each is a main-like function taking the arguments after the
 * command name (argv[0] is the command name). They return the process exit status:
 * 0 success, 1 the operation failed, 2 usage error.
 */
#ifndef KW_CLI_COMMANDS_H
#define KW_CLI_COMMANDS_H

int kw_cmd_ping(int argc, char **argv);
int kw_cmd_sign(int argc, char **argv);
int kw_cmd_decrypt(int argc, char **argv);
int kw_cmd_keygen(int argc, char **argv);
int kw_cmd_bench(int argc, char **argv);
int kw_cmd_stub(int argc, char **argv); /* src/cli/cmd_stub.c, owned by the provider work */
int kw_cmd_demo(int argc, char **argv);
int kw_cmd_tickets(int argc, char **argv); /* fleet session-ticket keys for nginx/HAProxy */

#endif /* KW_CLI_COMMANDS_H */
