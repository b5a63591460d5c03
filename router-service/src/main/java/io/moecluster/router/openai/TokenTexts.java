package io.moecluster.router.openai;

import io.moecluster.core.tokenizer.TextTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Each token's own text, as log-probabilities report it ({@code token} and its UTF-8
 * {@code bytes}): decoded once per id and kept. A token that is part of a multi-byte character
 * decodes to U+FFFD on its own, as in vLLM.
 */
final class TokenTexts {
    private final TextTokenizer tokenizer;
    private final AtomicReferenceArray<String> texts;

    TokenTexts(TextTokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.texts = new AtomicReferenceArray<>(tokenizer.vocabSize());
    }

    String text(int id) {
        if (id < 0 || id >= texts.length() || !tokenizer.isKnownId(id)) {
            return "";
        }
        String t = texts.get(id);
        if (t == null) {
            t = tokenizer.decode(new int[] {id}, false);
            texts.set(id, t);
        }
        return t;
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
