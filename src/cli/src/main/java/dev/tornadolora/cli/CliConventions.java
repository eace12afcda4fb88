package dev.tornadolora.cli;

import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What every command of the CLI has, set up once on the whole command tree so that a new sub-command gets it by
 * being listed in {@link Main}'s {@code subcommands}: {@code -h}/{@code --help} and {@code -V}/{@code --version}
 * (help wins over missing required options and exits 0), and usage errors that say what is wrong in one line plus
 * a hint: an unknown option is named as unknown, with the closest option of that command, even when required
 * options are missing too (picocli reports those first).
 */
final class CliConventions {
    private CliConventions() {}

    /** Applies the conventions to {@code cl} and every sub-command below it. */
    static CommandLine apply(CommandLine cl) {
        String[] version = cl.getCommandSpec().version();
        apply(cl, version);
        cl.setParameterExceptionHandler(CliConventions::usageError);
        return cl;
    }

    private static void apply(CommandLine cl, String[] version) {
        CommandSpec spec = cl.getCommandSpec();
        if (spec.options().stream().noneMatch(OptionSpec::usageHelp)) {
            if (spec.findOption("-h") == null && spec.findOption("--help") == null && spec.findOption("-V") == null
                    && spec.findOption("--version") == null) {
                spec.mixinStandardHelpOptions(true);
            } else if (spec.findOption("--help") == null) {  // a command that uses -h for something else
                spec.addOption(OptionSpec.builder("--help").usageHelp(true)
                        .description("Show this help message and exit.").build());
            }
        }
        if (spec.version().length == 0) {
            spec.version(version);
        }
        cl.getSubcommands().values().forEach(sub -> apply(sub, version));
    }

    /** Prints one line naming the problem and a hint, and returns picocli's usage-error code (2). */
    static int usageError(ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        CommandSpec spec = cl.getCommandSpec();
        PrintWriter err = cl.getErr();
        String command = spec.qualifiedName();
        List<String> unmatched = e instanceof UnmatchedArgumentException u ? u.getUnmatched() : cl.getUnmatchedArguments();
        String option = unmatched.stream().filter(CliConventions::looksLikeOption).findFirst().orElse(null);
        if (option != null) {
            String name = option.contains("=") ? option.substring(0, option.indexOf('=')) : option;
            String closest = closest(name, optionNames(spec));
            err.println(command + ": unknown option '" + name + "'" + (closest == null ? "" : "; did you mean " + closest + "?"));
        } else if (e instanceof UnmatchedArgumentException && !unmatched.isEmpty() && !cl.getSubcommands().isEmpty()
                && spec.positionalParameters().isEmpty()) {
            String closest = closest(unmatched.get(0), new ArrayList<>(cl.getSubcommands().keySet()));
            err.println(command + ": unknown command '" + unmatched.get(0) + "'"
                    + (closest == null ? "" : "; did you mean " + closest + "?"));
        } else {
            err.println(command + ": " + e.getMessage());
        }
        err.println("Try '" + command + " --help' for " + (cl.getSubcommands().isEmpty() ? "its options." : "the commands."));
        err.flush();
        return spec.exitCodeOnInvalidInput();
    }

    private static boolean looksLikeOption(String arg) {
        return arg.length() > 1 && arg.charAt(0) == '-' && !Character.isDigit(arg.charAt(1)) && arg.charAt(1) != '.';
    }

    private static List<String> optionNames(CommandSpec spec) {
        List<String> names = new ArrayList<>();
        for (OptionSpec o : spec.options()) {
            if (!o.hidden()) {
                for (String n : o.names()) {
                    names.add(n);
                    if (o.negatable() && n.startsWith("--")) names.add("--no-" + n.substring(2));
                }
            }
        }
        return names;
    }

    /**
     * The candidate closest to {@code typed}: the only one it is a prefix of, else the one at the smallest edit
     * distance (insertions, deletions, substitutions and swaps of neighbours) when that is small for its length;
     * null when nothing is close.
     */
    static String closest(String typed, List<String> candidates) {
        String t = typed.toLowerCase(Locale.ROOT);
        List<String> prefixed = candidates.stream().filter(c -> c.toLowerCase(Locale.ROOT).startsWith(t)).toList();
        if (prefixed.size() == 1 && t.length() > 2) {
            return prefixed.get(0);
        }
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String c : candidates) {
            int d = editDistance(t, c.toLowerCase(Locale.ROOT));
            if (d < bestDistance) {
                best = c;
                bestDistance = d;
            }
        }
        String bare = t.replaceFirst("^-+", "");
        return best != null && bestDistance <= Math.max(1, Math.min(3, bare.length() / 3)) ? best : null;
    }

    /** Optimal-string-alignment distance: Levenshtein plus transposition of two neighbouring characters. */
    static int editDistance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) d[i][0] = i;
        for (int j = 0; j <= b.length(); j++) d[0][j] = j;
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
                }
            }
        }
        return d[a.length()][b.length()];
    }
}
