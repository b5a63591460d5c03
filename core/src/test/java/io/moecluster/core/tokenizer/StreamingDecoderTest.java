package io.moecluster.core.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class StreamingDecoderTest {
    static TextTokenizer tok;

    @BeforeAll
    static void load() throws Exception {
        tok = TextTokenizer.load(TextTokenizerTest.goldenDir(), TextTokenizerTest.BOS);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    private static List<String> stream(StreamingDecoder dec, int[] ids) {
        List<String> deltas = new ArrayList<>();
        for (int id : ids) {
            deltas.add(dec.append(id));
        }
        deltas.add(dec.finish());
        return deltas;
    }

    @Test
    void japaneseIsEmittedOnlyAsWholeCharacters() {
        String text = "こんにちは世界";
        int[] ids = tok.encode(text, false);
        assertThat(ids).hasSize(3 * text.length()); // 3 UTF-8 bytes per character, one token per byte

        List<String> deltas = stream(new StreamingDecoder(tok), ids);

        assertThat(String.join("", deltas)).isEqualTo(text);
        assertThat(deltas).noneMatch(d -> d.indexOf('\uFFFD') >= 0);
        // Nothing for the first two bytes of each character, the whole character on the third.
        for (int i = 0; i < ids.length; i++) {
            String expected = i % 3 == 2 ? text.substring(i / 3, i / 3 + 1) : "";
            assertThat(deltas.get(i)).as("delta after token %d", i).isEqualTo(expected);
        }
        assertThat(deltas.getLast()).isEmpty();
    }

    @Test
    void mixedScriptsAndEmojiRoundTrip() {
        String text = "Hello 世界! 🎉 done.\n次の行";
        List<String> deltas = stream(new StreamingDecoder(tok), tok.encode(text, false));
        assertThat(String.join("", deltas)).isEqualTo(text);
        assertThat(deltas).noneMatch(d -> d.indexOf('\uFFFD') >= 0);
    }

    @Test
    void asciiComesOutTokenByToken() {
        StreamingDecoder dec = new StreamingDecoder(tok);
        assertThat(dec.append(75)).isEqualTo("H");
        assertThat(dec.append(104)).isEqualTo("e");
        assertThat(dec.finish()).isEmpty();
    }

    @Test
    void specialTokensProduceNoText() {
        StreamingDecoder dec = new StreamingDecoder(tok);
        assertThat(dec.append(TextTokenizerTest.BOS)).isEmpty();
        assertThat(dec.append(75)).isEqualTo("H");
        assertThat(dec.append(TextTokenizerTest.EOS)).isEmpty();
        assertThat(dec.finish()).isEmpty();
    }

    @Test
    void finishFlushesAnIncompleteCharacter() {
        StreamingDecoder dec = new StreamingDecoder(tok);
        int[] ids = tok.encode("世", false);
        assertThat(dec.append(ids[0])).isEmpty();
        assertThat(dec.append(ids[1])).isEmpty();
        assertThat(dec.finish()).isEqualTo("\uFFFD");
    }

    @Test
    void longSequencesGrowTheBuffer() {
        String text = "あいうえお".repeat(40); // 600 tokens, past the initial capacity
        List<String> deltas = stream(new StreamingDecoder(tok), tok.encode(text, false));
        assertThat(String.join("", deltas)).isEqualTo(text);
    }

    @Test
    void badIdIsRejectedAndDoesNotPoisonTheStream() {
        StreamingDecoder dec = new StreamingDecoder(tok);
        assertThat(dec.append(75)).isEqualTo("H");
        assertThatThrownBy(() -> dec.append(9999))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("9999");
        assertThat(dec.append(104)).isEqualTo("e");
    }
}
