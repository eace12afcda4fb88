package dev.tornadolora.cli;

import dev.tornadolora.tensor.CheckedMath;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code finetune --spark} arguments checked before Spark starts: a mistake found inside the barrier stage costs
 * every stage attempt first (an error in a task is retried), and a barrier stage with more tasks than the master
 * has slots waits forever (its tasks must all start at once). So: {@code --workers} and {@code --check-every}
 * positive, the global batch (--batch × --grad-accum, checked) a multiple of {@code --workers}, and for the local
 * masters, whose slots are known from the URL ({@code local} 1, {@code local[N]}, {@code local[*]} the cores,
 * {@code local[N,F]}, {@code local-cluster[E,C,M]} E·C), no more workers than slots. A cluster master's free slots
 * are only known once connected; Spark's own barrier check refuses those.
 */
final class SparkArguments {
    private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:,\\s*\\d+)?])?");
    private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*\\d+\\s*]");

    private SparkArguments() {}

    /**
     * @return the global batch (rows per optimizer step)
     * @throws IllegalArgumentException one line naming the option and, for a local master, its slots
     */
    static int validate(String master, int workers, int batch, int gradAccum, int checkEvery, int cores) {
        if (workers < 1) throw new IllegalArgumentException("--workers must be at least 1, got " + workers);
        if (checkEvery < 1) {
            throw new IllegalArgumentException("--check-every must be at least 1 (steps between replica checks), got "
                    + checkEvery);
        }
        if (batch < 1) throw new IllegalArgumentException("--batch must be positive, got " + batch);
        if (gradAccum < 1) throw new IllegalArgumentException("--grad-accum must be positive, got " + gradAccum);
        int global = CheckedMath.arrayLength("rows per optimizer step", CheckedMath.of("--batch", batch),
                CheckedMath.of("--grad-accum", gradAccum));
        if (global % workers != 0) {
            throw new IllegalArgumentException("the global batch (--batch x --grad-accum = " + global + " rows) does not"
                    + " split evenly over --workers " + workers + "; choose a batch x grad-accum that is a multiple of it");
        }
        long slots = slots(master, cores);
        if (slots >= 0 && workers > slots) {
            throw new IllegalArgumentException("--spark " + master + " has " + slots + " task slot" + (slots == 1 ? "" : "s")
                    + " but --workers " + workers + " barrier tasks must all run at once: use --workers " + slots
                    + " or a master with " + workers + " slots (local[" + workers + "])");
        }
        return global;
    }

    /** {@return the task slots of a local master, or -1 when the URL does not say (a cluster)} */
    static long slots(String master, int cores) {
        String m = master.strip();
        Matcher l = LOCAL.matcher(m);
        if (l.matches()) {
            if (l.group(1) == null) return 1;
            return l.group(1).equals("*") ? cores : Long.parseLong(l.group(1));
        }
        Matcher c = LOCAL_CLUSTER.matcher(m);
        if (c.matches()) return Long.parseLong(c.group(1)) * Long.parseLong(c.group(2));
        return -1;
    }
}
