package io.moecluster.core.tokenizer;

import java.util.Arrays;

/**
 * Turns generated token ids, one at a time, into text deltas for streaming.
 *
 * <p>Two problems make "decode the new token alone" wrong: byte-level BPE can split one UTF-8
 * character over several tokens (decoding the first alone gives U+FFFD), and decoders such as
 * SentencePiece's Metaspace treat a token differently at the start of a sequence (a leading space
 * is dropped). So, as Hugging Face's text-generation-inference does, each step decodes a window
 * that starts at the previously emitted token and emits only what the window gained; a delta
 * whose text ends in U+FFFD is held back until the character is complete. Decoding a window
 * rather than everything so far keeps each step's cost independent of the sequence length.
 *
 * <p>Special tokens (BOS, EOS) are skipped. Not thread-safe: one per generation.
 */
public final class StreamingDecoder {
    private static final char REPLACEMENT = '\uFFFD';

    private final TextTokenizer tokenizer;
    private int[] ids = new int[64];
    private int count;
    /** Start of the window to decode: the first token of the last emitted delta. */
    private int prefixOffset;
    /** End of the text already emitted. */
    private int readOffset;

    public StreamingDecoder(TextTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one generated token; returns the text it completes, possibly "" (a partial character,
     * or a special token).
     *
     * @throws IllegalArgumentException if {@code tokenId} is not in the vocabulary
     */
    public String append(int tokenId) {
        if (!tokenizer.isKnownId(tokenId)) {
            // Reject before storing so that one bad id does not poison every later decode.
            throw new IllegalArgumentException("token id " + tokenId + " is not in the vocabulary of "
                    + tokenizer.file() + " (size " + tokenizer.vocabSize() + ")");
        }
        if (count == ids.length) {
            ids = Arrays.copyOf(ids, ids.length * 2);
        }
        ids[count++] = tokenId;
        String delta = pending();
        if (delta.isEmpty() || delta.charAt(delta.length() - 1) == REPLACEMENT) {
            return "";
        }
        prefixOffset = readOffset;
        readOffset = count;
        return delta;
    }

    /**
     * Returns whatever is still held back (an incomplete character comes out as U+FFFD) and marks
     * it emitted. Call once generation has ended.
     */
    public String finish() {
        String delta = pending();
        prefixOffset = readOffset;
        readOffset = count;
        return delta;
    }

    /** Text of the tokens after {@code readOffset}, decoded in the context of the previous delta. */
    private String pending() {
        if (count == readOffset) {
            return "";
        }
        String prefix = tokenizer.decode(ids, prefixOffset, readOffset, true);
        String full = tokenizer.decode(ids, prefixOffset, count, true);
        // A window that did not grow (a special token, or a decoder cleanup rule that merged text)
        // has nothing new to emit.
        if (full.length() <= prefix.length()) {
            return "";
        }
        return full.substring(prefix.length());
    }
}
