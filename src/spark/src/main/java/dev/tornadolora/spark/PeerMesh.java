package dev.tornadolora.spark;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.CancelledKeyException;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The collective of a data-parallel run, between the barrier tasks themselves: a full mesh of TCP connections
 * (plain NIO, one per pair of tasks), set up once through one all-gather of the tasks' addresses on the driver's
 * {@code rendezvous} collective, then used for every step without the driver. The rendezvous happens at the first
 * call, so after every replica has loaded its model.
 *
 * <p>{@link #sumInRankOrder}: the array is cut into N chunks, chunk q = [q·P/N, (q+1)·P/N) owned by rank q.
 * <pre>
 *   reduce-scatter   every rank sends chunk q of its array to rank q (and its stamp to everyone);
 *                    rank q sums its chunk over the ranks in rank order, ((0 + v₀) + v₁) + … + v_{N−1}
 *   all-gather       every rank sends its summed chunk to everyone
 * </pre>
 * Each rank sends and receives 2·(N−1)/N · 4P bytes (+ 12-byte headers and the stamps), the bytes of a ring
 * all-reduce, in two rounds instead of the ring's 2·(N−1) hops: a ring passes partial sums along, which fixes
 * each chunk's order to a rotation of the ranks, where the owner here adds the contributions in rank order (the
 * single process's order). A ring would be the better schedule past a few dozen workers, where N−1 connections
 * per task and N−1 simultaneous senders to one owner start to cost.
 *
 * <p>Faults: a peer's process that dies closes its connections, and the next read here fails at once; a peer
 * that fails on its own sends an abort note with its reason first; silence longer than {@link Settings#stepTimeout}
 * (a lost host) fails too. Any of these throws {@link PeerFailedException}, which fails this task and with it the
 * barrier stage, which Spark retries from the newest resume point. Once failed, the mesh stays failed.
 */
public final class PeerMesh implements Collective {
    private static final int MAGIC = 0x544c524d;   // "TLRM"
    private static final int ABORT = -1;           // a header's round when the frame is an abort note
    private static final int HEADER = 12;          // round, stamp bytes, payload bytes
    private static final int MAX_NOTE = 4096;      // bytes of an abort note's text
    private static final long POLL_MILLIS = 250;   // how often a wait looks whether the task was killed

    /**
     * @param connectTimeout how long the connections of the rendezvous may take (the all-gather before them
     *                       waits for every replica to load its model, with Spark's own barrier timeout)
     * @param stepTimeout    the longest silence from a peer while a step's exchange waits for it: the slowest
     *                       replica's share of a step must fit, so it is generous; a dead process is seen at once
     */
    public record Settings(Duration connectTimeout, Duration stepTimeout) implements Serializable {
        public static final Settings DEFAULT = new Settings(Duration.ofSeconds(120), Duration.ofSeconds(600));

        public Settings {
            if (connectTimeout.isNegative() || connectTimeout.isZero() || stepTimeout.isNegative() || stepTimeout.isZero()) {
                throw new IllegalArgumentException("the mesh's timeouts must be positive, got connect " + connectTimeout
                        + " and step " + stepTimeout);
            }
        }
    }

    /** The exchange could not complete: a peer died, failed, went silent, or this task was interrupted. */
    public static final class PeerFailedException extends RuntimeException {
        PeerFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final Collective rendezvous;
    private final String host;
    private final int attempt;
    private final Settings settings;
    private final BooleanSupplier killed;
    private final int rank;
    private final int size;
    private Selector selector;
    private SocketChannel[] peers;            // by rank; null for this rank
    private boolean[] midFrame;               // an outgoing frame to the peer is incomplete: no abort note then
    private ByteBuffer[] out;                 // per peer: the frame being sent
    private ByteBuffer[] store;               // per peer: the direct buffer frames are built in, grown as needed
    private Inbox[] in;                       // per peer, reused
    private float[] scratch = new float[0];
    private int round;                        // exchanges so far; every frame carries it, so a desync shows
    private RuntimeException failure;
    private volatile boolean closed;
    /** Runs between the reduce-scatter and the all-gather: for tests that kill a peer in the middle of an all-reduce. */
    Runnable afterReduceScatter = () -> { };

    /**
     * A mesh over the tasks of {@code rendezvous}, listening on {@code host} (the executor's address) once it is
     * first used; {@code attempt} (the stage attempt) is checked in every connection's greeting. {@code killed}
     * is polled while waiting: Spark marks a task of a failed barrier stage killed without interrupting it.
     */
    public PeerMesh(Collective rendezvous, String host, int attempt, Settings settings, BooleanSupplier killed) {
        this.rendezvous = rendezvous;
        this.host = host;
        this.attempt = attempt;
        this.settings = settings;
        this.killed = killed;
        this.rank = rendezvous.rank();
        this.size = rendezvous.size();
    }

    @Override public int rank() { return rank; }

    @Override public int size() { return size; }

    /** The messages by rank, over the mesh (the stamps of an empty exchange). */
    @Override
    public String[] allGather(String message) {
        byte[] mine = message.getBytes(StandardCharsets.UTF_8);
        String[] all = new String[size];
        if (size == 1) return new String[] {message};
        guarded("an all-gather", () -> {
            for (int q = 0; q < size; q++) if (q != rank) setOut(q, frame(q, mine, new float[0], 0, 0));
            for (int q = 0; q < size; q++) if (q != rank) in[q].expect(0);
            pump("an all-gather");
            for (int q = 0; q < size; q++) all[q] = q == rank ? message : new String(in[q].stamp, StandardCharsets.UTF_8);
        });
        return all;
    }

    @Override
    public Reduced sumInRankOrder(float[] values, byte[] stamp) {
        if (size == 1) return Collective.solo().sumInRankOrder(values, stamp);
        byte[][] stamps = new byte[size][];
        long[] bytes = new long[2];
        guarded("an all-reduce", () -> {
            int n = values.length;
            // reduce-scatter: chunk q of my array (and my stamp) to rank q; chunk rank of everyone's to me
            for (int q = 0; q < size; q++) {
                if (q == rank) continue;
                setOut(q, frame(q, stamp, values, from(n, q), to(n, q)));
                in[q].expect(to(n, rank) - from(n, rank));
            }
            bytes[0] += sent();
            pump("the reduce-scatter");
            int f = from(n, rank), len = to(n, rank) - f;
            if (scratch.length < len) scratch = new float[len];
            float[] sum = new float[len];
            for (int r = 0; r < size; r++) {  // in rank order, starting from +0
                if (r == rank) {
                    for (int i = 0; i < len; i++) sum[i] += values[f + i];
                } else {
                    in[r].payload(scratch, len);
                    for (int i = 0; i < len; i++) sum[i] += scratch[i];
                }
            }
            System.arraycopy(sum, 0, values, f, len);
            afterReduceScatter.run();
            for (int q = 0; q < size; q++) {
                stamps[q] = q == rank ? stamp.clone() : in[q].stamp;
                if (q != rank) bytes[1] += in[q].bytes();
            }
            // all-gather: my summed chunk to everyone; chunk q from rank q
            for (int q = 0; q < size; q++) {
                if (q == rank) continue;
                setOut(q, frame(q, new byte[0], values, f, f + len));
                in[q].expect(to(n, q) - from(n, q));
            }
            bytes[0] += sent();
            pump("the all-gather");
            for (int q = 0; q < size; q++) {
                if (q == rank) continue;
                int qf = from(n, q), ql = to(n, q) - qf;
                if (scratch.length < ql) scratch = new float[ql];
                in[q].payload(scratch, ql);
                System.arraycopy(scratch, 0, values, qf, ql);
                bytes[1] += in[q].bytes();
            }
        });
        return new Reduced(stamps, bytes[0], bytes[1]);
    }

    /** Start of chunk q of n values (chunk q = [q·n/N, (q+1)·n/N)). */
    private int from(int n, int q) {
        return (int) ((long) q * n / size);
    }

    private int to(int n, int q) {
        return from(n, q + 1);
    }

    private interface IoBody {
        void run() throws IOException;
    }

    /** Runs an exchange: connects first if needed; any failure fails the mesh for good. */
    private void guarded(String what, IoBody body) {
        if (failure != null) throw new PeerFailedException("rank " + rank + ": the mesh failed before: " + failure.getMessage(), failure);
        if (closed) throw new IllegalStateException("rank " + rank + ": the mesh is closed");
        try {
            if (selector == null) connect();
            body.run();
        } catch (PeerFailedException e) {
            failure = e;
            throw e;
        } catch (IOException | UncheckedIOException | ClosedSelectorException | CancelledKeyException e) {
            failure = new PeerFailedException("rank " + rank + ": " + what + " failed: " + e, e);
            throw failure;
        }
    }

    private long sent() {
        long s = 0;
        for (int q = 0; q < size; q++) if (q != rank) s += out[q].remaining();
        return s;
    }

    private void setOut(int q, ByteBuffer frame) {
        out[q] = frame;
        midFrame[q] = frame.hasRemaining();
    }

    /** header (round, stamp bytes, payload bytes), stamp, values[from, to) as little-endian fp32 */
    private ByteBuffer frame(int peer, byte[] stamp, float[] values, int from, int to) {
        int payload = (to - from) * Float.BYTES, need = HEADER + stamp.length + payload;
        if (store[peer].capacity() < need) store[peer] = ByteBuffer.allocateDirect(need).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer b = store[peer].clear();
        b.putInt(round).putInt(stamp.length).putInt(payload).put(stamp);
        b.asFloatBuffer().put(values, from, to - from);
        b.position(b.position() + payload);
        return b.flip();
    }

    /**
     * Writes every pending frame and reads every expected one, whichever channel is ready, until all are done.
     * Silence from every pending peer for the step timeout, a closed connection, an abort note or an interrupt
     * (Spark killing the task) ends it with an exception.
     */
    private void pump(String what) throws IOException {
        long timeout = settings.stepTimeout().toNanos();
        long quietSince = System.nanoTime();
        while (true) {
            int pending = 0;
            for (SelectionKey k : selector.keys()) {
                int q = (Integer) k.attachment();
                int ops = (out[q].hasRemaining() ? SelectionKey.OP_WRITE : 0) | (in[q].done() ? 0 : SelectionKey.OP_READ);
                k.interestOps(ops);
                if (ops != 0) pending++;
            }
            if (pending == 0) break;
            long left = timeout - (System.nanoTime() - quietSince);
            if (left <= 0) {
                throw new PeerFailedException("rank " + rank + ": " + what + " of exchange " + round + " heard nothing from rank(s) "
                        + waitingFor() + " for " + settings.stepTimeout().toSeconds() + " s (spark.tornadolora.mesh.stepTimeout):"
                        + " their task hangs or their host is gone", null);
            }
            selector.select(Math.max(1, Math.min(POLL_MILLIS, TimeUnit.NANOSECONDS.toMillis(left))));
            checkKilled();
            Iterator<SelectionKey> it = selector.selectedKeys().iterator();
            while (it.hasNext()) {
                SelectionKey k = it.next();
                it.remove();
                int q = (Integer) k.attachment();
                SocketChannel ch = (SocketChannel) k.channel();
                try {
                    if (k.isValid() && k.isWritable() && ch.write(out[q]) > 0) {
                        quietSince = System.nanoTime();
                        midFrame[q] = out[q].hasRemaining();
                    }
                    if (k.isValid() && k.isReadable()) {
                        int n = in[q].read(ch);
                        if (n < 0) throw lost(q, what, null);
                        if (n > 0) quietSince = System.nanoTime();
                    }
                } catch (IOException e) {
                    throw lost(q, what, e);
                }
            }
        }
        round++;
    }

    private void checkKilled() throws InterruptedIOException {
        if (Thread.interrupted() || killed.getAsBoolean()) {
            throw new InterruptedIOException("rank " + rank + ": the task was killed");
        }
    }

    private PeerFailedException lost(int q, String what, IOException cause) {
        return new PeerFailedException("rank " + rank + ": rank " + q + " closed its connection during " + what + " of exchange "
                + round + (cause == null ? "" : " (" + cause.getMessage() + ")") + ": its task failed or its executor died", cause);
    }

    private String waitingFor() {
        StringBuilder s = new StringBuilder();
        for (int q = 0; q < size; q++) {
            if (q != rank && (out[q].hasRemaining() || !in[q].done())) s.append(s.isEmpty() ? "" : ",").append(q);
        }
        return s.toString();
    }

    /** What one peer sends this rank in an exchange: header, stamp, payload. */
    private final class Inbox {
        final int peer;
        final ByteBuffer header = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer body = ByteBuffer.allocateDirect(0);
        int expectedFloats;
        byte[] stamp;
        boolean inBody;
        boolean abort;

        Inbox(int peer) {
            this.peer = peer;
        }

        void expect(int floats) {
            expectedFloats = floats;
            header.clear();
            inBody = false;
            abort = false;
            stamp = null;
        }

        boolean done() {
            return inBody && !body.hasRemaining();
        }

        long bytes() {
            return HEADER + body.limit();
        }

        int read(SocketChannel ch) throws IOException {
            int total = 0;
            while (!done()) {
                int n = ch.read(inBody ? body : header);
                if (n < 0) return total == 0 ? -1 : total;
                if (n == 0) break;
                total += n;
                if (!inBody && !header.hasRemaining()) openBody();
            }
            if (done() && abort) {
                String note = StandardCharsets.UTF_8.decode(body.flip()).toString();
                throw new PeerFailedException("rank " + rank + ": rank " + peer + " failed" + (note.isEmpty() ? "" : ": " + note), null);
            }
            if (done() && stamp == null) {
                body.flip();
                stamp = new byte[header.getInt(4)];
                body.get(stamp);
                body.position(body.limit());  // done() stays true; payload() reads by absolute position
            }
            return total;
        }

        private void openBody() {
            int r = header.getInt(0), stampBytes = header.getInt(4), payload = header.getInt(8);
            abort = r == ABORT;
            if (abort) {
                body = ByteBuffer.allocate(Math.max(0, Math.min(stampBytes, MAX_NOTE)));
                inBody = true;
                return;
            }
            if (r != round || stampBytes < 0 || payload != expectedFloats * Float.BYTES) {
                throw new PeerFailedException("rank " + rank + ": rank " + peer + " is out of step: its frame says exchange "
                        + r + " with " + payload + " payload bytes, expected exchange " + round + " with "
                        + expectedFloats * Float.BYTES, null);
            }
            int need = stampBytes + payload;
            if (body.capacity() < need) body = ByteBuffer.allocateDirect(need).order(ByteOrder.LITTLE_ENDIAN);
            body.clear().limit(need);
            inBody = true;
        }

        /** The payload's floats into dst[0, n). */
        void payload(float[] dst, int n) {
            body.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(stamp.length).asFloatBuffer().get(dst, 0, n);
        }
    }

    /** The rendezvous: listen, one all-gather of host:port, connect to every lower rank, accept every higher one. */
    private void connect() throws IOException {
        long deadline = System.nanoTime() + settings.connectTimeout().toNanos();
        peers = new SocketChannel[size];
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(host, 0), size);
            int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            String[] addresses = rendezvous.allGather(host + ":" + port);
            for (int q = 0; q < rank; q++) {
                String a = addresses[q];
                int colon = a.lastIndexOf(':');
                SocketChannel ch = SocketChannel.open();
                peers[q] = ch;
                ch.socket().connect(new InetSocketAddress(a.substring(0, colon), Integer.parseInt(a.substring(colon + 1))),
                        (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                ByteBuffer hello = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(MAGIC).putInt(rank)
                        .putInt(size).putInt(attempt).flip();
                while (hello.hasRemaining()) ch.write(hello);
            }
            server.configureBlocking(false);
            try (Selector accept = Selector.open()) {
                server.register(accept, SelectionKey.OP_ACCEPT);
                int missing = size - 1 - rank;
                while (missing > 0) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new PeerFailedException("rank " + rank + ": " + missing + " higher rank(s) did not connect within "
                                + settings.connectTimeout().toSeconds() + " s (spark.tornadolora.mesh.connectTimeout)", null);
                    }
                    accept.select(Math.max(1, Math.min(POLL_MILLIS, TimeUnit.NANOSECONDS.toMillis(left))));
                    checkKilled();
                    accept.selectedKeys().clear();
                    SocketChannel ch;
                    while (missing > 0 && (ch = server.accept()) != null) {
                        int q = greeting(ch, deadline);
                        if (q < 0) {
                            ch.close();  // a stranger, or a task of another attempt
                            continue;
                        }
                        peers[q] = ch;
                        missing--;
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            for (SocketChannel ch : peers) if (ch != null) ch.close();
            throw e;
        }
        selector = Selector.open();
        out = new ByteBuffer[size];
        store = new ByteBuffer[size];
        in = new Inbox[size];
        midFrame = new boolean[size];
        for (int q = 0; q < size; q++) {
            if (q == rank) continue;
            SocketChannel ch = peers[q];
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            ch.configureBlocking(false);
            ch.register(selector, 0, q);
            out[q] = ByteBuffer.allocate(0);
            store[q] = ByteBuffer.allocateDirect(0);
            in[q] = new Inbox(q);
        }
    }

    /** The rank a connecting peer names in its greeting; −1 for a wrong greeting or attempt, or a rank already here. */
    private int greeting(SocketChannel ch, long deadline) throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        ch.configureBlocking(false);
        try (Selector s = Selector.open()) {
            ch.register(s, SelectionKey.OP_READ);
            while (hello.hasRemaining()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return -1;
                s.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                s.selectedKeys().clear();
                if (ch.read(hello) < 0) return -1;
            }
        }
        ch.configureBlocking(true);
        int magic = hello.getInt(0), q = hello.getInt(4), n = hello.getInt(8), a = hello.getInt(12);
        return magic == MAGIC && n == size && a == attempt && q > rank && q < size && peers[q] == null ? q : -1;
    }

    /**
     * Drops every connection at once, without a word to the peers, as a dying process does; callable from another
     * thread, where it also ends an exchange this mesh is waiting in.
     */
    public void kill() {
        closed = true;
        try {
            if (selector != null) selector.close();
            if (peers != null) for (SocketChannel ch : peers) if (ch != null) ch.close();
        } catch (IOException e) {
            // dying anyway
        }
    }

    /** Closes the connections. */
    @Override
    public void close() {
        close(null);
    }

    /**
     * Closes the connections; with a {@code cause}, first tells every peer between frames why (best effort), so
     * their failures name this one's reason.
     */
    public void close(Throwable cause) {
        if (closed) return;
        closed = true;
        if (peers == null) return;
        if (cause != null) {
            byte[] note = String.valueOf(cause.getMessage() == null ? cause.getClass().getName() : cause.getMessage())
                    .getBytes(StandardCharsets.UTF_8);
            note = Arrays.copyOf(note, Math.min(note.length, MAX_NOTE));
            for (int q = 0; q < size; q++) {
                if (peers[q] == null || (midFrame != null && midFrame[q])) continue;
                ByteBuffer b = ByteBuffer.allocate(HEADER + note.length).order(ByteOrder.LITTLE_ENDIAN)
                        .putInt(ABORT).putInt(note.length).putInt(0).put(note).flip();
                try {
                    peers[q].write(b);  // non-blocking once connected: what fits goes
                } catch (IOException e) {
                    // the peer is gone already
                }
            }
        }
        for (SocketChannel ch : peers) {
            try {
                if (ch != null) ch.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        try {
            if (selector != null) selector.close();
        } catch (IOException e) {
            // closing anyway
        }
    }
}
