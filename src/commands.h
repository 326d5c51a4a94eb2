/* commands.h — the subcommands of the shmwarden binary, one file each (cmd_*.c).
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status: 0 done, 1 failed, 2 usage error. */
#ifndef SHMWARDEN_COMMANDS_H
#define SHMWARDEN_COMMANDS_H

int cmd_manager(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_ls(int argc, char **argv);

#endif
