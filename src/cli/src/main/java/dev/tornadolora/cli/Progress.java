package dev.tornadolora.cli;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.util.Locale;

/** The training commands' progress bar (steps, ETA, an extra message) and their number formatting. */
final class Progress {
    private Progress() {}

    /**
     * The bar redraws one line on a terminal; when stderr goes to a file or pipe it prints a line every few
     * seconds instead of a stream of carriage returns.
     */
    static ProgressBar bar(String task, long steps) {
        ProgressBarBuilder b = new ProgressBarBuilder().setTaskName(task).setInitialMax(steps).setUnit(" steps", 1)
                .setStyle(ProgressBarStyle.ASCII).setMaxRenderedLength(110);
        if (isTerminal()) {
            b.setUpdateIntervalMillis(200).setConsumer(new ConsoleProgressBarConsumer(System.err));
        } else {
            b.setUpdateIntervalMillis(5000).setConsumer(new DelegatingProgressBarConsumer(System.err::println, 110));
        }
        return b.build();
    }

    /** {@code System.console().isTerminal()} where the JDK has it (22+), else whether there is a console at all. */
    static boolean isTerminal() {
        java.io.Console c = System.console();
        if (c == null) return false;
        try {
            return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(c);
        } catch (ReflectiveOperationException e) {
            return true;
        }
    }

    /** 1234567 → "1.2M", 12345 → "12.3k", 123 → "123". */
    static String compact(double v) {
        return v >= 1e6 ? String.format(Locale.ROOT, "%.1fM", v / 1e6)
                : v >= 1e3 ? String.format(Locale.ROOT, "%.1fk", v / 1e3) : String.format(Locale.ROOT, "%.0f", v);
    }

    static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
