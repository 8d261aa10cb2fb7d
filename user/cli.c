// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The dispatcher, the option parser, help and completion (see cli.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "output.h"
#include "pins.h"

const struct ls_opt ls_global_opts[] = {
	{"json", 'j', false, LS_GOPT_JSON, NULL, "JSON output; errors as {\"error\": ...}"},
	{"pretty", 'p', false, LS_GOPT_PRETTY, NULL, "pretty-printed JSON (implies --json)"},
	{"verbose", 'v', false, LS_GOPT_VERBOSE, NULL, "more log; twice (-vv) for libbpf's too"},
	{"version", 'V', false, LS_GOPT_VERSION, NULL, "print the version and exit"},
	{NULL},
};

bool ls_is_help(const char *arg)
{
	return !strcmp(arg, "help") || !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

static bool is_prefix(const char *arg, const char *word)
{
	size_t n = strlen(arg);

	return n && n <= strlen(word) && !strncmp(arg, word, n);
}

/*
 * The entry word names: an exact name, else the one command it is a prefix
 * of. NULL when there is none or several (*why says which), or when it
 * abbreviates a command that must be typed in full.
 */
static const struct ls_cmd *lookup(const struct ls_cmd *const *table, const char *word,
				   const char **why)
{
	const struct ls_cmd *found = NULL;

	*why = "unknown";
	for (const struct ls_cmd *const *pc = table, *c = *pc; c; c = *++pc)
		if (!strcmp(c->name, word))
			return c;
	for (const struct ls_cmd *const *pc = table, *c = *pc; c; c = *++pc) {
		if (!is_prefix(word, c->name))
			continue;
		if (c->flags & LS_CMD_EXACT) {
			*why = "not abbreviated";
			found = c;
			return NULL;
		}
		if (found) {
			*why = "ambiguous";
			return NULL;
		}
		found = c;
	}
	return found;
}

/* "a|b|c" of a table's names. */
static void names_of(const struct ls_cmd *const *table, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (const struct ls_cmd *const *pc = table, *c = *pc; c && used < len; c = *++pc)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", c == *table ? "" : "|",
					 c->name);
}

static int resolve(const struct ls_cmd *const *table, const char *word, const char *what,
		   const struct ls_cmd **out)
{
	const char *why;
	char names[256], matches[256] = "";
	size_t used = 0;

	*out = lookup(table, word, &why);
	if (*out)
		return 0;
	names_of(table, names, sizeof(names));
	if (!strcmp(why, "not abbreviated")) {
		for (const struct ls_cmd *const *pc = table, *c = *pc; c; c = *++pc)
			if (is_prefix(word, c->name) && (c->flags & LS_CMD_EXACT))
				return ls_fail(LS_EXIT_USAGE,
					       "'%s' is not abbreviated: type '%s' in full", word,
					       c->name);
	}
	if (!strcmp(why, "ambiguous")) {
		for (const struct ls_cmd *const *pc = table, *c = *pc; c && used < sizeof(matches);
		     c = *++pc)
			if (is_prefix(word, c->name))
				used += (size_t)snprintf(matches + used, sizeof(matches) - used,
							 "%s%s", used ? ", " : "", c->name);
		return ls_fail(LS_EXIT_USAGE, "%s '%s' is ambiguous: %s", what, word, matches);
	}
	return ls_fail(LS_EXIT_USAGE, "unknown %s '%s' (one of %s)", what, word, names);
}

const struct ls_opt *ls_opt_match(const struct ls_opt *opts, const char *arg, const char **value)
{
	*value = NULL;
	if (!opts || arg[0] != '-' || !arg[1])
		return NULL;
	if (arg[1] == '-') {
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);

		for (const struct ls_opt *o = opts; o->name; o++)
			if (strlen(o->name) == n && !strncmp(o->name, name, n)) {
				*value = eq ? eq + 1 : NULL;
				return o;
			}
		return NULL;
	}
	for (const struct ls_opt *o = opts; o->name; o++)
		if (o->short_name && o->short_name == arg[1]) {
			*value = arg[2] ? arg + 2 : NULL;
			return o;
		}
	return NULL;
}

int ls_opts_parse(int argc, char **argv, const struct ls_opt *opts,
		  int (*on_opt)(void *ctx, int id, const char *value, char *err, size_t errlen),
		  void *ctx, char **pos, int max_pos, char *err, size_t errlen)
{
	bool options = true;
	int n = 0;

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct ls_opt *o;
		int rc;

		if (options && !strcmp(arg, "--")) {
			options = false;
			continue;
		}
		if (!options || arg[0] != '-' || !arg[1]) {
			if (n == max_pos) {
				snprintf(err, errlen, "unexpected argument '%s'", arg);
				return -EINVAL;
			}
			pos[n++] = argv[i];
			continue;
		}
		o = ls_opt_match(opts, arg, &value);
		if (!o) {
			snprintf(err, errlen, "unknown option '%s'", arg);
			return -EINVAL;
		}
		if (o->has_arg && !value) {
			if (i + 1 == argc) {
				snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->arg);
				return -EINVAL;
			}
			value = argv[++i];
		} else if (!o->has_arg && value) {
			snprintf(err, errlen, "--%s takes no value", o->name);
			return -EINVAL;
		}
		rc = on_opt(ctx, o->id, value, err, errlen);
		if (rc)
			return rc;
	}
	return n;
}

static void print_opts(FILE *out, const struct ls_opt *opts)
{
	for (const struct ls_opt *o = opts; o && o->name; o++) {
		char head[64];

		snprintf(head, sizeof(head), "%s%c%s--%s%s%s", o->short_name ? "-" : "",
			 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
			 o->has_arg ? " " : "", o->has_arg ? o->arg : "");
		fprintf(out, "  %-26s %s\n", o->short_name ? head : head + 2, o->help);
	}
}

void ls_cmd_print_help(FILE *out, const struct ls_cmd *cmd, const char *path)
{
	char names[256];

	if (cmd->sub) {
		names_of(cmd->sub, names, sizeof(names));
		fprintf(out, "Usage: %s%s {%s} ...\n\n%s.\n", path,
			cmd->flags & LS_CMD_IFACE ? " IFACE" : "", names, cmd->summary);
		if (cmd->help)
			fprintf(out, "\n%s", cmd->help);
		fprintf(out, "\nCommands:\n");
		for (const struct ls_cmd *const *ps = cmd->sub, *s = *ps; s; s = *++ps)
			fprintf(out, "  %s%s %s %s\n      %s.\n", path,
				cmd->flags & LS_CMD_IFACE ? " IFACE" : "", s->name,
				s->args ? s->args : "", s->summary);
		fprintf(out, "\n'%s%s COMMAND help' tells more.\n", path,
			cmd->flags & LS_CMD_IFACE ? " IFACE" : "");
	} else {
		fprintf(out, "Usage: %s%s%s%s\n\n%s.\n", path,
			cmd->flags & LS_CMD_IFACE ? " IFACE" : "", cmd->args ? " " : "",
			cmd->args ? cmd->args : "", cmd->summary);
		if (cmd->help)
			fprintf(out, "\n%s", cmd->help);
		if (cmd->opts && cmd->opts->name) {
			fprintf(out, "\nOptions:\n");
			print_opts(out, cmd->opts);
		}
	}
	if (cmd->more_help) {
		fputc('\n', out);
		cmd->more_help(out);
	}
	fprintf(out, "\nGlobal options (anywhere):\n");
	print_opts(out, ls_global_opts);
	fprintf(out, "\nExit codes: 0 ok, 1 runtime error, 2 usage error. See loadshed(8).\n");
}

/* A help request among a command's arguments (before "--"). */
static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") ||
		    (i == 0 && !strcmp(argv[i], "help")))
			return true;
	return false;
}

int ls_cli_dispatch(const struct ls_cmd *const *table, int argc, char **argv)
{
	struct ls_call call = {};
	const struct ls_cmd *cmd;
	char path[128], names[256], what[64];
	int rc;

	if (argc < 1)
		return ls_fail(LS_EXIT_USAGE, "a command is missing (try 'loadshed help')");
	rc = resolve(table, argv[0], "command", &cmd);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "loadshed %s", cmd->name);
	argc--;
	argv++;
	if ((cmd->flags & LS_CMD_IFACE) || cmd->sub) {
		if (argc && ls_is_help(argv[0])) {
			ls_cmd_print_help(stdout, cmd, path);
			return LS_EXIT_OK;
		}
	} else if (wants_help(argc, argv)) {
		ls_cmd_print_help(stdout, cmd, path);
		return LS_EXIT_OK;
	}
	if (cmd->flags & LS_CMD_IFACE) {
		if (!argc || argv[0][0] == '-')
			return ls_fail(LS_EXIT_USAGE, "usage: %s IFACE ... (try '%s help')", path,
				       path);
		if (!ls_ifname_ok(argv[0]))
			return ls_fail(LS_EXIT_USAGE, "'%s' is not an interface name", argv[0]);
		call.ifname = argv[0];
		argc--;
		argv++;
	}
	if (cmd->sub) {
		const struct ls_cmd *sub;

		names_of(cmd->sub, names, sizeof(names));
		if (!argc)
			return ls_fail(LS_EXIT_USAGE, "usage: %s%s {%s} ... (try '%s help')", path,
				       cmd->flags & LS_CMD_IFACE ? " IFACE" : "", names, path);
		if (ls_is_help(argv[0])) {
			ls_cmd_print_help(stdout, cmd, path);
			return LS_EXIT_OK;
		}
		snprintf(what, sizeof(what), "%s command", cmd->name);
		rc = resolve(cmd->sub, argv[0], what, &sub);
		if (rc)
			return rc;
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s %s",
			 cmd->flags & LS_CMD_IFACE ? " IFACE" : "", sub->name);
		cmd = sub;
		argc--;
		argv++;
		if (wants_help(argc, argv)) {
			ls_cmd_print_help(stdout, cmd, path);
			return LS_EXIT_OK;
		}
	} else if ((cmd->flags & LS_CMD_IFACE) && wants_help(argc, argv)) {
		ls_cmd_print_help(stdout, cmd, path);
		return LS_EXIT_OK;
	}
	call.cmd = cmd;
	call.argc = argc;
	call.argv = argv;
	return cmd->run(&call);
}

/* ---- bash completion ------------------------------------------------------ */

/* "w1|w2|...": every word that names c in table: its name and unambiguous prefixes. */
static void patterns_of(const struct ls_cmd *const *table, const struct ls_cmd *c, char *buf,
			size_t len)
{
	char word[64];
	size_t used = 0, n = strlen(c->name);

	buf[0] = 0;
	for (size_t k = 1; k <= n && k < sizeof(word); k++) {
		const char *why;

		memcpy(word, c->name, k);
		word[k] = 0;
		if (lookup(table, word, &why) != c)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "", word);
		if (used >= len)
			break;
	}
}

static void words_of(const struct ls_cmd *const *table, FILE *out)
{
	for (const struct ls_cmd *const *pc = table, *c = *pc; c; c = *++pc)
		fprintf(out, "%s%s", c == *table ? "" : " ", c->name);
}

/* The shell call that completes a word of the given kind. */
static void complete_kind(FILE *out, const char *kind)
{
	if (!strcmp(kind, "file"))
		fprintf(out, "_loadshed_files");
	else if (!strcmp(kind, "iface"))
		fprintf(out, "_loadshed_ifaces");
	else
		fprintf(out, "_loadshed_words \"%s\"", kind);
}

/* The completion of a (sub)command's options, their values and its arguments. */
static void complete_cmd(FILE *out, const struct ls_cmd *c, const char *indent)
{
	bool any_arg = false;

	for (const struct ls_opt *o = c->opts; o && o->name; o++)
		any_arg |= o->has_arg;
	if (any_arg) {
		fprintf(out, "%scase $prev in\n", indent);
		for (const struct ls_opt *o = c->opts; o && o->name; o++) {
			if (!o->has_arg)
				continue;
			fprintf(out, "%s--%s", indent, o->name);
			if (o->short_name)
				fprintf(out, "|-%c", o->short_name);
			fprintf(out, ") ");
			if (o->complete)
				complete_kind(out, o->complete);
			fprintf(out, "%sreturn ;;\n", o->complete ? "; " : "");
		}
		fprintf(out, "%sesac\n", indent);
	}
	fprintf(out, "%scase $cur in\n%s-*) _loadshed_words \"", indent, indent);
	for (const struct ls_opt *o = c->opts; o && o->name; o++)
		fprintf(out, "%s--%s", o == c->opts ? "" : " ", o->name);
	fprintf(out, "\" ;;\n");
	if (c->complete_args) {
		fprintf(out, "%s*) ", indent);
		complete_kind(out, c->complete_args);
		fprintf(out, " ;;\n");
	}
	fprintf(out, "%sesac\n", indent);
}

void ls_cli_print_bash_completion(FILE *out, const struct ls_cmd *const *table)
{
	char pat[512];

	fprintf(out,
		"# bash completion for loadshed, generated by 'loadshed completion bash'\n"
		"# from the command table of the loadshed binary itself.\n\n"
		"_loadshed_words() { mapfile -t COMPREPLY < <(compgen -W \"$1\" -- \"$cur\"); }\n"
		"_loadshed_files() { mapfile -t COMPREPLY < <(compgen -f -- \"$cur\"); }\n"
		"_loadshed_ifaces() {\n"
		"\tlocal ifs\n"
		"\tifs=$(ls /sys/class/net 2>/dev/null)\n"
		"\t_loadshed_words \"$ifs\"\n"
		"}\n\n"
		"_loadshed() {\n"
		"\tlocal cur prev w i\n"
		"\tlocal -a rest=()\n"
		"\tcur=${COMP_WORDS[COMP_CWORD]}\n"
		"\tprev=${COMP_WORDS[COMP_CWORD - 1]}\n"
		"\tCOMPREPLY=()\n"
		"\t# The words before the cursor, global options left out.\n"
		"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
		"\t\tw=${COMP_WORDS[i]}\n"
		"\t\tcase $w in\n\t\t");
	for (const struct ls_opt *o = ls_global_opts; o->name; o++)
		fprintf(out, "%s--%s|-%c", o == ls_global_opts ? "" : "|", o->name, o->short_name);
	fprintf(out, "|-vv) continue ;;\n"
		     "\t\tesac\n"
		     "\t\trest+=(\"$w\")\n"
		     "\tdone\n"
		     "\tif [ ${#rest[@]} -eq 0 ]; then\n"
		     "\t\tcase $cur in\n"
		     "\t\t-*) _loadshed_words \"");
	for (const struct ls_opt *o = ls_global_opts; o->name; o++)
		fprintf(out, "%s--%s", o == ls_global_opts ? "" : " ", o->name);
	fprintf(out, "\" ;;\n\t\t*) _loadshed_words \"");
	words_of(table, out);
	fprintf(out, "\" ;;\n\t\tesac\n\t\treturn\n\tfi\n\tcase ${rest[0]} in\n");
	for (const struct ls_cmd *const *pc = table, *c = *pc; c; c = *++pc) {
		unsigned int at = 1; /* index in rest of the next word */

		patterns_of(table, c, pat, sizeof(pat));
		fprintf(out, "\t%s)\n", pat);
		if (c->flags & LS_CMD_IFACE) {
			fprintf(out,
				"\t\tif [ ${#rest[@]} -eq %u ]; then _loadshed_ifaces; return; "
				"fi\n",
				at);
			at++;
		}
		if (c->sub) {
			fprintf(out, "\t\tif [ ${#rest[@]} -eq %u ]; then _loadshed_words \"", at);
			words_of(c->sub, out);
			fprintf(out, "\"; return; fi\n\t\tcase ${rest[%u]} in\n", at);
			for (const struct ls_cmd *const *ps = c->sub, *s = *ps; s; s = *++ps) {
				patterns_of(c->sub, s, pat, sizeof(pat));
				fprintf(out, "\t\t%s)\n", pat);
				complete_cmd(out, s, "\t\t\t");
				fprintf(out, "\t\t\t;;\n");
			}
			fprintf(out, "\t\tesac\n");
		} else {
			complete_cmd(out, c, "\t\t");
		}
		fprintf(out, "\t\t;;\n");
	}
	fprintf(out, "\tesac\n}\ncomplete -F _loadshed loadshed\n");
}
