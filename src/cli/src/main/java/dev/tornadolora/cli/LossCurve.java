package dev.tornadolora.cli;

import dev.tornadolora.train.Trainer;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.util.List;

/** The training loss by step as a PNG line chart (log-scale loss axis), rendered headless with XChart. */
public final class LossCurve {
    private LossCurve() {}

    /** PNG bytes of loss (y, log scale) against step (x); non-positive losses are left out (no log). */
    public static byte[] png(String title, List<Trainer.StepRecord> steps) throws IOException {
        return png(title, "training loss (MSE)", steps);
    }

    /** As {@link #png(String, List)} with the loss axis titled {@code yTitle}. */
    public static byte[] png(String title, String yTitle, List<Trainer.StepRecord> steps) throws IOException {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");  // servers have no display; XChart only draws to an image
        }
        double[] x = steps.stream().filter(s -> s.loss() > 0).mapToDouble(Trainer.StepRecord::step).toArray();
        double[] y = steps.stream().filter(s -> s.loss() > 0).mapToDouble(Trainer.StepRecord::loss).toArray();
        if (x.length == 0) {
            throw new IllegalArgumentException("no positive loss values to plot");
        }
        XYChart chart = new XYChartBuilder().width(800).height(500).title(title)
                .xAxisTitle("step").yAxisTitle(yTitle).build();
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setLegendVisible(false);
        chart.getStyler().setYAxisDecimalPattern("0.0E0");
        chart.getStyler().setXAxisTickMarkSpacingHint(90);
        XYSeries series = chart.addSeries("loss", x, y);
        series.setMarker(SeriesMarkers.NONE);
        return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
    }
}
