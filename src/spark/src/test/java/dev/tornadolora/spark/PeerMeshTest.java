package dev.tornadolora.spark;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link PeerMesh} between threads over loopback, without Spark: the rendezvous is an in-process all-gather. The
 * sums are compared bit for bit with the rank-order sum computed here, element by element.
 */
class PeerMeshTest {
    static final PeerMesh.Settings FAST = new PeerMesh.Settings(Duration.ofSeconds(20), Duration.ofSeconds(20));

    /** The driver's part, in one process: an all-gather of strings among {@code size} threads. */
    static final class LocalRendezvous {
        final String[] slots;
        final CyclicBarrier barrier;

        LocalRendezvous(int size) {
            slots = new String[size];
            barrier = new CyclicBarrier(size);
        }

        Collective rank(int r) {
            return new Collective() {
                @Override public int rank() { return r; }
                @Override public int size() { return slots.length; }
                @Override public String[] allGather(String message) {
                    try {
                        slots[r] = message;
                        barrier.await(20, TimeUnit.SECONDS);
                        String[] all = slots.clone();
                        barrier.await(20, TimeUnit.SECONDS);
                        return all;
                    } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                        throw new IllegalStateException(e);
                    }
                }
                @Override public Reduced sumInRankOrder(float[] values, byte[] stamp) {
                    throw new UnsupportedOperationException();
                }
            };
        }
    }

    interface RankBody<T> {
        T run(PeerMesh mesh) throws Exception;
    }

    /** Runs {@code body} on {@code size} meshes, one thread each; the results (or failures) by rank. */
    static <T> List<Future<T>> onMeshes(int size, PeerMesh.Settings settings, RankBody<T> body) throws InterruptedException {
        LocalRendezvous rv = new LocalRendezvous(size);
        ExecutorService pool = Executors.newFixedThreadPool(size);
        List<Future<T>> out = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            Collective c = rv.rank(r);
            out.add(pool.submit(() -> {
                PeerMesh mesh = new PeerMesh(c, "127.0.0.1", 0, settings, () -> false);
                try {
                    T t = body.run(mesh);
                    mesh.close();
                    return t;
                } catch (Exception e) {
                    mesh.close(e);
                    throw e;
                }
            }));
        }
        pool.shutdown();
        assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS), "the ranks finished");
        return out;
    }

    static float[] gradient(int rank, int n) {
        SplittableRandom rng = new SplittableRandom(100 + rank);
        float[] g = new float[n];
        for (int i = 0; i < n; i++) g[i] = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(-6, 3)));
        g[0] = -0f;  // −0 everywhere: the sum from +0 is +0
        return g;
    }

    @Test
    void sumsInRankOrderBitForBitOnEveryRank() throws Exception {
        for (int size : new int[] {2, 3, 5}) {
            int n = 1001;  // not a multiple of the ranks: uneven chunks
            float[] expected = new float[n];
            for (int r = 0; r < size; r++) {
                float[] g = gradient(r, n);
                for (int i = 0; i < n; i++) expected[i] += g[i];
            }
            List<Future<Object[]>> results = onMeshes(size, FAST, mesh -> {
                float[] g = gradient(mesh.rank(), n);
                byte[] stamp = ("rank" + mesh.rank()).getBytes(StandardCharsets.UTF_8);
                Collective.Reduced r1 = mesh.sumInRankOrder(g, stamp);
                float[] again = gradient(mesh.rank(), n);
                mesh.sumInRankOrder(again, new byte[0]);  // a second round on the same connections
                String[] gathered = mesh.allGather("hello from " + mesh.rank());
                return new Object[] {g, r1, again, gathered};
            });
            for (int r = 0; r < size; r++) {
                Object[] o = results.get(r).get();
                float[] got = (float[]) o[0];
                for (int i = 0; i < n; i++) {
                    assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(got[i]),
                            size + " ranks, rank " + r + ", element " + i + ": " + expected[i] + " vs " + got[i]);
                }
                assertArrayEquals(got, (float[]) o[2], "the second round");
                Collective.Reduced red = (Collective.Reduced) o[1];
                for (int q = 0; q < size; q++) {
                    assertEquals("rank" + q, new String(red.stamps()[q], StandardCharsets.UTF_8));
                    assertEquals("hello from " + q, ((String[]) o[3])[q]);
                }
                long gradientBytes = 4L * n * (size - 1) / size;  // ± a float of the uneven chunks
                assertTrue(Math.abs(red.bytesSent() - 2 * gradientBytes) < 4L * size + 40L * (size - 1),
                        red.bytesSent() + " bytes sent for " + size + " ranks");
            }
            assertEquals(0f, expected[0]);
            assertEquals(0, Float.floatToRawIntBits(expected[0]), "+0");
        }
    }

    @Test
    void aPeerKilledInTheMiddleOfAnAllReduceFailsTheOthersAtOnce() throws Exception {
        long t0 = System.nanoTime();
        List<Future<String>> results = onMeshes(3, FAST, mesh -> {
            float[] g = gradient(mesh.rank(), 100_000);
            mesh.sumInRankOrder(g, new byte[0]);
            // rank 2 dies after the reduce-scatter of the second all-reduce, as a process does: no word to anyone
            if (mesh.rank() == 2) mesh.afterReduceScatter = mesh::kill;
            mesh.sumInRankOrder(g, new byte[0]);
            return "finished";
        });
        List<String> messages = new ArrayList<>();
        for (int r = 0; r < 3; r++) {
            ExecutionException e = assertThrows(ExecutionException.class, results.get(r)::get);
            assertInstanceOf(PeerMesh.PeerFailedException.class, e.getCause(), "rank " + r);
            messages.add(e.getCause().getMessage());
        }
        // the survivors lose rank 2 in the all-gather (or one of them loses the other, who lost rank 2, first)
        assertTrue(messages.get(0).contains("rank 2 closed its connection during the all-gather")
                || messages.get(1).contains("rank 2 closed its connection during the all-gather"), messages.toString());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(15), "well before the 20 s step timeout");
    }

    @Test
    void aPeerThatFailsTellsTheOthersWhy() throws Exception {
        List<Future<String>> results = onMeshes(3, FAST, mesh -> {
            mesh.sumInRankOrder(gradient(mesh.rank(), 10), new byte[0]);
            if (mesh.rank() == 1) throw new IllegalStateException("injected failure at step 2");
            mesh.sumInRankOrder(gradient(mesh.rank(), 10), new byte[0]);
            return "finished";
        });
        for (int r : new int[] {0, 2}) {
            ExecutionException e = assertThrows(ExecutionException.class, results.get(r)::get);
            assertTrue(e.getCause().getMessage().contains("rank 1 failed: injected failure at step 2"), e.getCause().getMessage());
        }
    }

    @Test
    void aSilentPeerTimesOut() throws Exception {
        PeerMesh.Settings quick = new PeerMesh.Settings(Duration.ofSeconds(20), Duration.ofMillis(500));
        List<Future<String>> results = onMeshes(2, quick, mesh -> {
            mesh.sumInRankOrder(gradient(mesh.rank(), 10), new byte[0]);
            if (mesh.rank() == 1) {
                sleep(3000);  // alive, connected, silent
                return "slept";
            }
            mesh.sumInRankOrder(gradient(mesh.rank(), 10), new byte[0]);
            return "finished";
        });
        ExecutionException e = assertThrows(ExecutionException.class, results.get(0)::get);
        assertTrue(e.getCause().getMessage().contains("heard nothing from rank(s) 1"), e.getCause().getMessage());
        assertTrue(e.getCause().getMessage().contains("spark.tornadolora.mesh.stepTimeout"), e.getCause().getMessage());
        assertEquals("slept", results.get(1).get());
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
