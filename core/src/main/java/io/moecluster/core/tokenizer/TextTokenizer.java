package io.moecluster.core.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.model.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;

/**
 * Text to token ids and back, using a model directory's {@code tokenizer.json} through the Hugging
 * Face tokenizers library (DJL's native binding).
 *
 * <p>Special tokens are never added by the tokenizer's post-processor: the engine decides whether a
 * prompt starts with BOS, so {@link #encode} prepends it itself when asked. Otherwise a model whose
 * post-processor adds {@code <s>} would get it twice.
 *
 * <p>Thread-safe: the native tokenizer is immutable after loading.
 */
public final class TextTokenizer implements AutoCloseable {

    static {
        // The native library ships inside the DJL jar for our platforms; never let DJL fall back to
        // downloading one (servers run without internet access). An explicit setting wins.
        if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final int bosTokenId;
    /** known[id] is true for every id the tokenizer can decode; the vocab may in principle have holes. */
    private final boolean[] known;
    private volatile boolean closed;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Path file, int bosTokenId, boolean[] known) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.bosTokenId = bosTokenId;
        this.known = known;
    }

    /**
     * Loads {@code modelDir/tokenizer.json}.
     *
     * @param bosTokenId the id {@link #encode} prepends when asked (from the model config)
     * @throws ModelFormatException if the file is missing, is not a tokenizer, or lacks {@code bosTokenId}
     */
    public static TextTokenizer load(Path modelDir, int bosTokenId) {
        Path file = modelDir.resolve("tokenizer.json");
        // Parse the JSON ourselves first: DJL exposes neither the vocabulary size nor a readable
        // error for a broken file, and we need the id range to reject bad ids before they reach
        // native code.
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file + ": not found (is " + modelDir
                    + " a Hugging Face model directory with a fast tokenizer?)");
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot parse JSON: " + e.getMessage(), e);
        }
        boolean[] known = knownIds(root, file);
        if (bosTokenId < 0 || bosTokenId >= known.length || !known[bosTokenId]) {
            throw new ModelFormatException(file + ": BOS token id " + bosTokenId + " is not in the vocabulary (size "
                    + known.length + ")");
        }
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(file, Map.of(
                    "addSpecialTokens", "false",
                    // No truncation or padding: prompts are checked against the context length by
                    // the engine, which can say why it refuses one.
                    "truncation", "false",
                    "padding", "false"));
        } catch (IOException | RuntimeException e) {
            throw new ModelFormatException(file + ": cannot load tokenizer: " + e.getMessage(), e);
        }
        return new TextTokenizer(hf, file, bosTokenId, known);
    }

    private static boolean[] knownIds(JsonNode root, Path file) {
        JsonNode vocab = root.path("model").path("vocab");
        if (!root.isObject() || !vocab.isObject()) {
            throw new ModelFormatException(file + ": no 'model.vocab' object; only tokenizers with a vocabulary"
                    + " map (BPE, WordPiece) are supported");
        }
        int max = -1;
        for (Iterator<JsonNode> it = vocab.elements(); it.hasNext(); ) {
            max = Math.max(max, checkId(it.next(), file));
        }
        JsonNode added = root.path("added_tokens");
        for (JsonNode t : added) {
            max = Math.max(max, checkId(t.path("id"), file));
        }
        boolean[] known = new boolean[max + 1];
        for (Iterator<JsonNode> it = vocab.elements(); it.hasNext(); ) {
            known[it.next().asInt()] = true;
        }
        for (JsonNode t : added) {
            known[t.path("id").asInt()] = true;
        }
        return known;
    }

    private static int checkId(JsonNode n, Path file) {
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() < 0) {
            throw new ModelFormatException(file + ": token id must be a non-negative integer, got " + n);
        }
        return n.asInt();
    }

    /**
     * Token ids for {@code text}, without any special tokens the tokenizer's post-processor would
     * add; with {@code addBos}, the BOS id given to {@link #load} comes first.
     */
    public int[] encode(String text, boolean addBos) {
        ensureOpen();
        Encoding enc = tokenizer.encode(text, false, false);
        long[] ids = enc.getIds();
        int offset = addBos ? 1 : 0;
        int[] out = new int[ids.length + offset];
        if (addBos) {
            out[0] = bosTokenId;
        }
        for (int i = 0; i < ids.length; i++) {
            out[i + offset] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Text for {@code ids}; with {@code skipSpecial}, special tokens (BOS, EOS, ...) are left out. */
    public String decode(int[] ids, boolean skipSpecial) {
        return decode(ids, 0, ids.length, skipSpecial);
    }

    /**
     * Text for {@code ids[from, to)}. Incomplete UTF-8 at the end of the range (byte-level BPE can
     * split a character across tokens) decodes to U+FFFD.
     *
     * @throws IllegalArgumentException naming the first id that is not in the vocabulary
     */
    public String decode(int[] ids, int from, int to, boolean skipSpecial) {
        ensureOpen();
        Objects.checkFromToIndex(from, to, ids.length);
        long[] wide = new long[to - from];
        for (int i = from; i < to; i++) {
            int id = ids[i];
            // The native decoder silently drops unknown ids; a caller passing one has a bug
            // (wrong vocab size, wrong model), so say so instead of returning shortened text.
            if (!isKnownId(id)) {
                throw new IllegalArgumentException("token id " + id + " at position " + i
                        + " is not in the vocabulary of " + file + " (size " + known.length + ")");
            }
            wide[i - from] = id;
        }
        return tokenizer.decode(wide, skipSpecial);
    }

    /** One more than the largest id the tokenizer knows; may be smaller than the model's vocab_size (padding rows). */
    public int vocabSize() {
        return known.length;
    }

    /** Whether {@link #decode} accepts {@code id}. */
    public boolean isKnownId(int id) {
        return id >= 0 && id < known.length && known[id];
    }

    public int bosTokenId() {
        return bosTokenId;
    }

    /** The tokenizer.json this was loaded from, for error messages. */
    public Path file() {
        return file;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("tokenizer " + file + " is closed");
        }
    }

    /** Frees the native tokenizer; idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            tokenizer.close();
        }
    }
}
