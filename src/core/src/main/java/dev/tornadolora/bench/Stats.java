package dev.tornadolora.bench;

import java.util.Arrays;
import java.util.Collection;

/** The one median of the project: of the bench command, the JMH comparison and the TornadoVM profile. */
public final class Stats {
    private Stats() {}

    /** The median (mean of the middle two for an even count), NaN for no values; the input is not changed. */
    public static double median(double... values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n == 0 ? Double.NaN : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    public static double median(Collection<Double> values) {
        return median(values.stream().mapToDouble(Double::doubleValue).toArray());
    }
}
