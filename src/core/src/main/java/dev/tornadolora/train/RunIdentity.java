package dev.tornadolora.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.StrictJson;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which run wrote a file: every option that changes the math (seed, sizes, rank, lr, optimizer, momentum, batch,
 * eval batch, ...) as one JSON object, its SHA-256, and a run id derived from that hash. Stored in the metadata of
 * every file a training run writes ({@link #metadata()}; the resume point also keeps the options themselves,
 * {@link #stateMetadata()}), so a resume can check that the state it is given is the one this folder's run wrote
 * and that it continues with the same options, naming the first that differ. Derived rather than random, the id
 * keeps the files of two identical runs byte-identical; two runs with the same id compute the same thing.
 *
 * @param runId         {@code run-} and the first 16 hex digits of the hash
 * @param optionsSha256 the SHA-256 of the options' compact JSON, in hex
 * @param options       the options, as read back from their JSON text
 */
public record RunIdentity(String runId, String optionsSha256, ObjectNode options) {
    /** Metadata key of the run id. */
    public static final String RUN_ID = "run_id";
    /** Metadata key of the options' hash. */
    public static final String OPTIONS_SHA256 = "options_sha256";
    /** Metadata key of the options (in the resume point). */
    public static final String OPTIONS = "options";
    private static final ObjectMapper COMPACT = new ObjectMapper();

    /**
     * {@return the identity of a run with these options}
     *
     * @param options every option that changes the math, keys in a fixed order (the caller's)
     */
    public static RunIdentity of(ObjectNode options) {
        ObjectNode canonical = canonical(options);
        String sha = sha256(text(canonical));
        return new RunIdentity("run-" + sha.substring(0, 16), sha, canonical);
    }

    /**
     * {@return the identity of a run whose log records {@code config}, leaving out the entries a resumed run may
     * change (where it runs, how often it reports)} Both jobs make their identity this way: {@code train} from its
     * options, {@code finetune} from its options, the data's checksum and the digest of the model weights read.
     *
     * @param config     the log's configuration object
     * @param notOptions keys left out
     */
    public static RunIdentity of(ObjectNode config, java.util.Collection<String> notOptions) {
        ObjectNode o = config.deepCopy();
        notOptions.forEach(o::remove);
        return of(o);
    }

    /**
     * The one resume check of every job: the resume point carries a run identity that matches its own options
     * ({@link #fromState}), it was made with this run's options (each that differs named: an option, the data's
     * checksum, the model's digest), and the log beside it belongs to the same run.
     *
     * @param state   the resume point
     * @param log     the log read from the same folder
     * @param logFile the log's path, for messages
     * @param what    starts the message ("--resume: out")
     * @return the identity the state was saved with
     * @throws IllegalArgumentException naming the file and what differs
     */
    public RunIdentity requireResumable(SafeTensors state, TrainingLog log, java.nio.file.Path logFile, String what) {
        return requireResumable(state, log, logFile, what, Map.of());
    }

    /**
     * As {@link #requireResumable(SafeTensors, TrainingLog, java.nio.file.Path, String)}, with the options a later
     * version added to the identity: an option the resume point does not record counts as its value in
     * {@code earlierDefaults} (what the version that saved it did), see {@link #requireSameOptions(RunIdentity,
     * Map, String)}.
     *
     * @param state           the resume point
     * @param log             the log read from the same folder
     * @param logFile         the log's path, for messages
     * @param what            starts the message ("--resume: out")
     * @param earlierDefaults per option added since, the value that does what the versions before it did
     * @return the identity the state was saved with
     * @throws IllegalArgumentException naming the file and what differs
     */
    public RunIdentity requireResumable(SafeTensors state, TrainingLog log, java.nio.file.Path logFile, String what,
                                        Map<String, JsonNode> earlierDefaults) {
        RunIdentity saved = fromState(state);
        requireSameOptions(saved, earlierDefaults, what);
        if (!saved.runId.equals(log.runId())) {
            throw new IllegalArgumentException(what + " holds files of different runs: " + logFile + " belongs to run "
                    + SafeText.quote(log.runId()) + " but " + state.source() + " to run " + SafeText.quote(saved.runId));
        }
        return saved;
    }

    /** {@return {@code run_id} and {@code options_sha256}: for the metadata of every file of the run} */
    public Map<String, String> metadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(RUN_ID, runId);
        m.put(OPTIONS_SHA256, optionsSha256);
        return m;
    }

    /** {@return {@link #metadata()} and the options as JSON: for the resume point's metadata} */
    public Map<String, String> stateMetadata() {
        Map<String, String> m = metadata();
        m.put(OPTIONS, text(options));
        return m;
    }

    /**
     * The identity a resume point was saved with, checked: its options must hash to its {@code options_sha256} and
     * that to its {@code run_id} (a file edited by hand, or put together from two, is refused).
     *
     * @param st a training state
     * @return the identity it was saved with
     * @throws IllegalArgumentException when it has none or it does not match its options
     */
    public static RunIdentity fromState(SafeTensors st) {
        Map<String, String> m = st.metadata();
        if (!m.containsKey(RUN_ID) || !m.containsKey(OPTIONS) || !m.containsKey(OPTIONS_SHA256)) {
            throw new IllegalArgumentException(st.source() + ": has no run identity (run_id, options); it was not"
                    + " written by this version, so it cannot be checked: start a new run");
        }
        JsonNode options = StrictJson.requireObject(StrictJson.parse(st.source() + ": metadata 'options'",
                m.get(OPTIONS)), st.source() + ": metadata 'options'");
        RunIdentity id = of((ObjectNode) options);
        if (!id.optionsSha256.equals(m.get(OPTIONS_SHA256)) || !id.runId.equals(m.get(RUN_ID))) {
            throw new IllegalArgumentException(st.source() + ": its run identity does not match its options"
                    + " (run_id " + SafeText.quote(m.get(RUN_ID)) + "): the file was altered");
        }
        return id;
    }

    /**
     * Refuses, naming each option that differs ({@code lr 0.01 -> 0.02}), when {@code saved} was made with other
     * options than this identity's.
     *
     * @param saved the identity a resume point was saved with
     * @param what  starts the message ("--resume: out/train")
     * @throws IllegalArgumentException naming each option that differs
     */
    public void requireSameOptions(RunIdentity saved, String what) {
        requireSameOptions(saved, Map.of(), what);
    }

    /**
     * As {@link #requireSameOptions(RunIdentity, String)}, where an option of this identity that {@code saved}
     * does not record but {@code earlierDefaults} names counts as that value: a resume point saved before the
     * option joined the identity continues when this run's value does what the earlier version did, and is
     * refused, naming the option, when it does not.
     *
     * @param saved           the identity a resume point was saved with
     * @param earlierDefaults per option added since, the value that does what the versions before it did
     * @param what            starts the message ("--resume: out")
     * @throws IllegalArgumentException naming each option that differs
     */
    public void requireSameOptions(RunIdentity saved, Map<String, JsonNode> earlierDefaults, String what) {
        if (saved.optionsSha256.equals(optionsSha256)) return;
        List<String> differences = new ArrayList<>();
        Set<String> keys = new LinkedHashSet<>();
        options.fieldNames().forEachRemaining(keys::add);
        saved.options.fieldNames().forEachRemaining(keys::add);
        for (String k : keys) {
            JsonNode recorded = saved.options.get(k), now = options.get(k);
            JsonNode before = recorded == null && now != null ? earlierDefaults.get(k) : recorded;
            if (before == null || !before.equals(now)) {
                String was = before == null ? "(not recorded)" : recorded == null
                        ? "(not recorded: " + SafeText.of(before.toString(), 60) + " then)" : SafeText.of(before.toString(), 60);
                differences.add(SafeText.of(k) + " " + was + " -> " + (now == null ? "(none)" : SafeText.of(now.toString(), 60)));
            }
        }
        if (differences.isEmpty()) return;  // only options added since, each at the value of the version that saved
        throw new IllegalArgumentException(what + " was trained with other options: " + String.join(", ", differences)
                + " (give the options of the run being resumed, or start a new run in another folder)");
    }

    /** Through text and back, so that a float 16.0f and a double 16.0 (or an int and a long) compare equal. */
    private static ObjectNode canonical(ObjectNode options) {
        return (ObjectNode) StrictJson.parse("options", text(options));
    }

    private static String text(JsonNode n) {
        try {
            return COMPACT.writeValueAsString(n);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
