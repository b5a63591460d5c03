package io.moecluster.core.tokenizer;

import io.moecluster.core.io.PythonStyleJson;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a Hugging Face {@code tokenizer.json} for a synthetic byte-level BPE vocabulary of any
 * size: ids 0–2 are {@code <unk>}, {@code <s>}, {@code </s>}; id {@code 3 + b} is byte {@code b}
 * (as its GPT-2 {@code bytes_to_unicode} symbol); every further id is a BPE merge.
 *
 * <p>The merges are not learned from text; they exist so that a test model can have a realistic
 * vocabulary size. They are built breadth-first: first every pair of symbols from a printable
 * alphabet (space, letters, digits, punctuation), then each of those tokens extended by one
 * symbol, and so on, until the vocabulary is full. Each merge joins two tokens already in the
 * vocabulary and its result is their concatenation, as the BPE model requires.
 *
 * <p>The JSON is formatted as Python's {@code json.dumps} does by default, so that a 259-token
 * tokenizer is byte-identical to the golden test fixtures.
 */
public final class ByteLevelBpeTokenizerWriter {
    public static final List<String> SPECIAL_TOKENS = List.of("<unk>", "<s>", "</s>");
    /** Special tokens plus one token per byte value. */
    public static final int BASE_VOCAB_SIZE = SPECIAL_TOKENS.size() + 256;

    private ByteLevelBpeTokenizerWriter() {}

    /** Writes {@code tokenizer.json} content with exactly {@code vocabSize} tokens to {@code file}. */
    public static void write(Path file, int vocabSize) throws IOException {
        Files.writeString(file, toJson(vocabSize), StandardCharsets.UTF_8);
    }

    /** The {@code tokenizer.json} content for exactly {@code vocabSize} tokens. */
    public static String toJson(int vocabSize) {
        if (vocabSize < BASE_VOCAB_SIZE) {
            throw new IllegalArgumentException("a byte-level BPE vocabulary needs at least " + BASE_VOCAB_SIZE
                    + " tokens (3 special + 256 bytes), got " + vocabSize);
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String special : SPECIAL_TOKENS) {
            vocab.put(special, vocab.size());
        }
        String[] byteSymbols = bytesToUnicode();
        for (String symbol : byteSymbols) {
            vocab.put(symbol, vocab.size());
        }
        List<String> merges = buildMerges(vocab, vocabSize, mergeAlphabet(byteSymbols));

        StringBuilder json = new StringBuilder(64 * vocabSize);
        json.append("{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [");
        for (int id = 0; id < SPECIAL_TOKENS.size(); id++) {
            if (id > 0) {
                json.append(", ");
            }
            json.append("{\"id\": ").append(id).append(", \"content\": ");
            PythonStyleJson.quote(json, SPECIAL_TOKENS.get(id));
            json.append(", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false,"
                    + " \"special\": true}");
        }
        json.append("], \"normalizer\": null,"
                + " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true,"
                + " \"use_regex\": true},"
                + " \"post_processor\": null,"
                + " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true,"
                + " \"use_regex\": true},"
                + " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\","
                + " \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false,"
                + " \"byte_fallback\": false, \"vocab\": {");
        boolean first = true;
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (!first) {
                json.append(", ");
            }
            first = false;
            PythonStyleJson.quote(json, e.getKey());
            json.append(": ").append(e.getValue());
        }
        json.append("}, \"merges\": [");
        for (int i = 0; i < merges.size(); i++) {
            if (i > 0) {
                json.append(", ");
            }
            PythonStyleJson.quote(json, merges.get(i));
        }
        json.append("]}}");
        return json.toString();
    }

    /**
     * GPT-2's reversible byte-to-symbol map: printable Latin-1 bytes stand for themselves, every
     * other byte is shifted to U+0100 and up, so that no token contains whitespace or control
     * characters. Index = byte value.
     */
    static String[] bytesToUnicode() {
        String[] symbols = new String[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            symbols[b] = String.valueOf((char) (printable ? b : 256 + shifted++));
        }
        return symbols;
    }

    /** Symbols merges are built from, most text-like first: space (Ġ), lower, upper, digits, punctuation. */
    private static List<String> mergeAlphabet(String[] byteSymbols) {
        List<String> alphabet = new ArrayList<>();
        alphabet.add(byteSymbols[' ']);
        for (char c = 'a'; c <= 'z'; c++) {
            alphabet.add(byteSymbols[c]);
        }
        for (char c = 'A'; c <= 'Z'; c++) {
            alphabet.add(byteSymbols[c]);
        }
        for (char c = '0'; c <= '9'; c++) {
            alphabet.add(byteSymbols[c]);
        }
        for (int c = '!'; c <= '~'; c++) {
            if (!Character.isLetterOrDigit(c)) {
                alphabet.add(byteSymbols[c]);
            }
        }
        return alphabet;
    }

    /**
     * Adds merges (and their results to {@code vocab}) until it holds {@code vocabSize} tokens.
     * Level n+1 tokens are level n tokens plus one alphabet symbol; strings already in the
     * vocabulary (such as {@code <s>}) are skipped, so every id is a distinct string.
     */
    private static List<String> buildMerges(Map<String, Integer> vocab, int vocabSize, List<String> alphabet) {
        List<String> merges = new ArrayList<>(vocabSize - vocab.size());
        List<String> level = alphabet;
        while (vocab.size() < vocabSize) {
            List<String> next = new ArrayList<>();
            outer:
            for (String left : level) {
                for (String right : alphabet) {
                    if (vocab.size() == vocabSize) {
                        break outer;
                    }
                    String token = left + right;
                    if (vocab.containsKey(token)) {
                        continue;
                    }
                    vocab.put(token, vocab.size());
                    merges.add(left + " " + right); // byte-level symbols never contain a space
                    next.add(token);
                }
            }
            level = next;
        }
        return merges;
    }
}
