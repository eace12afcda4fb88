package dev.tornadolora.cli;

import dev.tornadolora.bench.BenchResult;
import dev.tornadolora.bench.Workload;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The results as files: JSON (a list, one object per device and workload), CSV (the same columns) and a PNG
 * grouped bar chart of GFLOP/s per workload and device (a panel per token count, and one for the model steps). Numbers without a value (NaN) are JSON null and an
 * empty CSV cell.
 */
public final class BenchReport {
    private BenchReport() {}

    private record Column(String name, Function<BenchResult, Object> value) {}

    /** Field names and order of a record, JSON and CSV alike. */
    private static final List<Column> COLUMNS = List.of(
            new Column("device", BenchResult::device),
            new Column("op", r -> r.workload().op().id),
            new Column("base", r -> r.workload().base().id),
            new Column("tokens", r -> r.workload().tokens()),
            new Column("in_dim", r -> r.workload().inDim()),
            new Column("out_dim", r -> r.workload().outDim()),
            new Column("rank", r -> r.workload().rank()),
            new Column("model", r -> r.workload().model() == null ? null : r.workload().model().label()),
            new Column("reps", BenchResult::reps),
            new Column("ms_median", BenchResult::msMedian),
            new Column("ms_min", BenchResult::msMin),
            new Column("ms_max", BenchResult::msMax),
            new Column("ms_first", BenchResult::msFirst),
            new Column("gflops", BenchResult::gflops),
            new Column("gb_per_s", BenchResult::gbPerSecond),
            new Column("speedup_vs_jvm", BenchResult::speedupVsJvm),
            new Column("flops", r -> r.workload().flops()),
            new Column("weight_bytes", BenchResult::weightBytes),
            new Column("compile_ms", BenchResult::compileMs),
            new Column("kernel_ms", BenchResult::kernelMs),
            new Column("transfer_ms", BenchResult::transferMs),
            new Column("steady", BenchResult::steady),
            new Column("device_bytes", r -> r.deviceBytes() < 0 ? null : r.deviceBytes()),
            new Column("copy_in_bytes", r -> r.copyInBytes() < 0 ? null : r.copyInBytes()),
            new Column("copy_out_bytes", r -> r.copyOutBytes() < 0 ? null : r.copyOutBytes()),
            new Column("verified", BenchResult::verified),
            new Column("reference", BenchResult::reference),
            new Column("max_rel_error", BenchResult::maxRelError),
            new Column("error", BenchResult::error));

    public static List<String> columnNames() {
        return COLUMNS.stream().map(Column::name).toList();
    }

    public static byte[] json(List<BenchResult> results) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ArrayNode list = mapper.createArrayNode();
        for (BenchResult r : results) {
            ObjectNode o = list.addObject();
            for (Column c : COLUMNS) {
                Object v = c.value.apply(r);
                switch (v) {
                    case null -> o.putNull(c.name);
                    case String s -> o.put(c.name, s);
                    case Integer i -> o.put(c.name, i);
                    case Long l -> o.put(c.name, l);
                    case Boolean b -> o.put(c.name, b);
                    case Double d when Double.isFinite(d) -> o.put(c.name, d);
                    case Double d -> o.putNull(c.name);
                    default -> throw new IllegalStateException("column " + c.name + ": " + v.getClass());
                }
            }
        }
        return mapper.writeValueAsBytes(list);
    }

    public static byte[] csv(List<BenchResult> results) {
        StringBuilder sb = new StringBuilder(String.join(",", columnNames())).append('\n');
        for (BenchResult r : results) {
            sb.append(COLUMNS.stream().map(c -> csvCell(c.value.apply(r))).collect(Collectors.joining(","))).append('\n');
        }
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static String csvCell(Object v) {
        if (v == null || v instanceof Double d && !Double.isFinite(d)) return "";
        String s = v.toString();
        return s.contains(",") || s.contains("\"") || s.contains("\n") ? '"' + s.replace("\"", "\"\"") + '"' : s;
    }

    /**
     * Grouped bar charts of GFLOP/s at the median time, one panel per token count (one token is bound by weight
     * traffic, many tokens by arithmetic: their scales differ by orders of magnitude), one group per workload and
     * one bar per device. A row that failed verification has no bar, and its device is marked FAILED in the legend.
     */
    public static byte[] png(List<BenchResult> results) throws IOException {
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no results to plot");
        }
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");  // servers have no display; XChart only draws to an image
        }
        // Layer workloads by token count, then the model steps (a whole step is another scale again).
        Map<Integer, List<BenchResult>> byTokens = new TreeMap<>(results.stream()
                .filter(r -> r.workload().model() == null).collect(Collectors.groupingBy(r -> r.workload().tokens())));
        List<BufferedImage> panels = new ArrayList<>();
        for (Map.Entry<Integer, List<BenchResult>> e : byTokens.entrySet()) {
            int t = e.getKey();
            panels.add(BitmapEncoder.getBufferedImage(panel(String.format(Locale.ROOT, "%d token%s", t,
                    t == 1 ? "" : "s"), "workload (op, base, in x out)", e.getValue())));
        }
        List<BenchResult> steps = results.stream().filter(r -> r.workload().model() != null).toList();
        if (!steps.isEmpty()) {
            panels.add(BitmapEncoder.getBufferedImage(panel("model training step",
                    "workload (step, base, tokens, model, LoRA modules)", steps)));
        }
        int width = panels.stream().mapToInt(BufferedImage::getWidth).max().orElseThrow();
        int height = panels.stream().mapToInt(BufferedImage::getHeight).sum();
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        int y = 0;
        for (BufferedImage panel : panels) {
            g.drawImage(panel, 0, y, null);
            y += panel.getHeight();
        }
        g.dispose();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ImageIO.write(image, "png", bytes);
        return bytes.toByteArray();
    }

    private static CategoryChart panel(String title, String xAxis, List<BenchResult> results) {
        Map<String, Map<String, BenchResult>> byDevice = new LinkedHashMap<>();
        Set<String> workloads = new LinkedHashSet<>();
        for (BenchResult r : results) {
            Workload w = r.workload();
            String label = w.op().shortName + " " + w.base().id + " "
                    + (w.model() == null ? "" : "T" + w.tokens() + " ") + w.shapeLabel();
            workloads.add(label);
            byDevice.computeIfAbsent(r.device(), d -> new LinkedHashMap<>()).put(label, r);
        }
        int width = Math.min(3000, Math.max(1000, 200 + 30 * workloads.size() * byDevice.size()));
        CategoryChart chart = new CategoryChartBuilder().width(width).height(500)
                .title(String.format(Locale.ROOT, "GFLOP/s per call, %s, rank %d (higher is better)", title,
                        results.get(0).workload().rank()))
                .xAxisTitle(xAxis).yAxisTitle("GFLOP/s").build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setOverlapped(false);
        chart.getStyler().setXAxisLabelRotation(30);
        chart.getStyler().setAvailableSpaceFill(0.8);
        List<String> categories = new ArrayList<>(workloads);
        for (Map.Entry<String, Map<String, BenchResult>> e : byDevice.entrySet()) {
            List<Double> values = new ArrayList<>();
            int failed = 0;
            for (String w : categories) {
                BenchResult r = e.getValue().get(w);
                boolean ok = r != null && r.verified() && Double.isFinite(r.gflops());
                failed += r != null && !r.verified() ? 1 : 0;
                values.add(ok ? r.gflops() : 0.0);
            }
            chart.addSeries(failed > 0 ? e.getKey() + " (" + failed + " FAILED)" : e.getKey(), categories, values);
        }
        return chart;
    }
}
