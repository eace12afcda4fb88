package dev.tornadolora.cli;

import dev.tornadolora.train.Trainer;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import org.knowm.xchart.style.Styler;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.util.List;

/**
 * The training loss by step as a PNG line chart, rendered headless with XChart: {@link #png} for {@code train}
 * (log-scale loss axis), {@link #finetune} for {@code finetune} (the raw loss, a smoothed line over it, the eval
 * points, and the learning rate on a second axis; numbers on every axis).
 */
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

    /** A step's eval loss, for {@link #finetune}. */
    public record EvalPoint(long step, double loss) {}

    /** The bias-corrected exponential moving average TensorBoard draws (weight 0.9) of the losses. */
    static double[] smoothed(double[] y, double weight) {
        double[] out = new double[y.length];
        double last = 0, debias = 1;
        for (int i = 0; i < y.length; i++) {
            last = weight * last + (1 - weight) * y[i];
            debias *= weight;
            out[i] = last / (1 - debias);
        }
        return out;
    }

    /**
     * The finetune curve: raw training loss (thin, light), its smoothed line, the eval losses as points (step 0:
     * before training), the learning rate on the right axis; linear axes with numbers.
     */
    public static byte[] finetune(String title, List<Trainer.StepRecord> steps, List<EvalPoint> evals) throws IOException {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
        if (steps.isEmpty()) throw new IllegalArgumentException("no steps to plot");
        double[] x = steps.stream().mapToDouble(Trainer.StepRecord::step).toArray();
        double[] y = steps.stream().mapToDouble(Trainer.StepRecord::loss).toArray();
        double[] lr = steps.stream().mapToDouble(Trainer.StepRecord::lr).toArray();
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title).xAxisTitle("optimizer step")
                .yAxisTitle("loss (cross-entropy)").build();
        var st = chart.getStyler();
        st.setLegendPosition(Styler.LegendPosition.InsideNE);
        st.setYAxisDecimalPattern("0.###");
        st.setXAxisDecimalPattern("0");
        st.setXAxisTickMarkSpacingHint(90);
        st.setChartBackgroundColor(Color.WHITE);
        XYSeries raw = chart.addSeries("training loss", x, y);
        raw.setMarker(SeriesMarkers.NONE);
        raw.setLineColor(new Color(120, 160, 220));
        raw.setLineStyle(new BasicStroke(1f));
        XYSeries smooth = chart.addSeries("smoothed (EMA 0.9)", x, smoothed(y, 0.9));
        smooth.setMarker(SeriesMarkers.NONE);
        smooth.setLineColor(new Color(20, 60, 160));
        smooth.setLineStyle(new BasicStroke(2.5f));
        if (!evals.isEmpty()) {
            XYSeries ev = chart.addSeries("eval loss", evals.stream().mapToDouble(EvalPoint::step).toArray(),
                    evals.stream().mapToDouble(EvalPoint::loss).toArray());
            ev.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
            ev.setMarker(SeriesMarkers.DIAMOND);
            ev.setMarkerColor(new Color(210, 70, 30));
        }
        XYSeries rate = chart.addSeries("learning rate (right axis)", x, lr);
        rate.setYAxisGroup(1);
        rate.setMarker(SeriesMarkers.NONE);
        rate.setLineColor(new Color(120, 120, 120));
        rate.setLineStyle(new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
        chart.setYAxisGroupTitle(1, "learning rate");
        st.setYAxisGroupPosition(1, Styler.YAxisPosition.Right);
        st.putYAxisGroupDecimalPatternMap(1, "0.0E0");
        return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
    }
}
