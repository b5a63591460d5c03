package io.moecluster.core.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.moecluster.core.model.ModelFormatException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextTokenizerTest {
    /** Byte-level BPE without merges: ids 0-2 are <unk>, <s>, </s>; id 3+b is byte b. */
    static final int BOS = 1;
    static final int EOS = 2;

    static TextTokenizer tok;

    static Path goldenDir() throws URISyntaxException {
        return Path.of(TextTokenizerTest.class.getResource("/golden/mixtral-tiny/tokenizer.json").toURI())
                .getParent();
    }

    @BeforeAll
    static void load() throws Exception {
        tok = TextTokenizer.load(goldenDir(), BOS);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    @Test
    void encodesBytesAsBytePlusThree() {
        // 'H'=72, 'e'=101, 'l'=108, 'o'=111
        assertThat(tok.encode("Hello", true)).containsExactly(1, 75, 104, 111, 111, 114);
        assertThat(tok.encode("Hello", false)).containsExactly(75, 104, 111, 111, 114);
        // 'あ' is E3 81 82 in UTF-8
        assertThat(tok.encode("あ", false)).containsExactly(0xE3 + 3, 0x81 + 3, 0x82 + 3);
        assertThat(tok.encode("", true)).containsExactly(BOS);
    }

    @Test
    void vocabSizeCoversAllIds() {
        assertThat(tok.vocabSize()).isEqualTo(259);
        assertThat(tok.bosTokenId()).isEqualTo(BOS);
    }

    @Test
    void roundTripsAsciiAndUtf8() {
        for (String text : new String[] {
                "Hello, world! 123", "  leading and trailing spaces  ", "line\nbreak\ttab",
                "こんにちは世界", "日本語とEnglishの混在 🎉 ü ß"}) {
            assertThat(tok.decode(tok.encode(text, true), true)).as(text).isEqualTo(text);
            assertThat(tok.decode(tok.encode(text, false), false)).as(text).isEqualTo(text);
        }
    }

    @Test
    void skipSpecialDropsBosAndEos() {
        int[] ids = {BOS, 75, 104, EOS};
        assertThat(tok.decode(ids, true)).isEqualTo("He");
        assertThat(tok.decode(ids, false)).isEqualTo("<s>He</s>");
    }

    @Test
    void decodeOfRange() {
        int[] ids = tok.encode("Hello", true);
        assertThat(tok.decode(ids, 2, 4, true)).isEqualTo("el");
    }

    @Test
    void badIdIsRejectedWithItsValue() {
        assertThatThrownBy(() -> tok.decode(new int[] {75, 5000}, true))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("5000")
                .hasMessageContaining("position 1");
        assertThatThrownBy(() -> tok.decode(new int[] {-1}, true))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-1");
        assertThatThrownBy(() -> tok.decode(new int[] {259}, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("259");
    }

    @Test
    void missingFileNamesThePath(@TempDir Path dir) {
        assertThatThrownBy(() -> TextTokenizer.load(dir, BOS))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(dir.resolve("tokenizer.json").toString())
                .hasMessageContaining("not found");
    }

    @Test
    void unparsableFileNamesThePath(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{ not json");
        assertThatThrownBy(() -> TextTokenizer.load(dir, BOS))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(file.toString());
    }

    @Test
    void jsonThatIsNotATokenizerNamesThePath(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        // Valid vocabulary map but an unknown model type: only the native loader can tell.
        Files.writeString(file, "{\"model\": {\"type\": \"Nonsense\", \"vocab\": {\"a\": 0}}}");
        assertThatThrownBy(() -> TextTokenizer.load(dir, 0))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(file.toString());
        Files.writeString(file, "[1, 2]");
        assertThatThrownBy(() -> TextTokenizer.load(dir, 0))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(file.toString());
    }

    @Test
    void bosOutsideVocabularyIsAFormatError() throws Exception {
        assertThatThrownBy(() -> TextTokenizer.load(goldenDir(), 100_000))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("100000")
                .hasMessageContaining("tokenizer.json");
    }

    @Test
    void closedTokenizerSaysSo() throws Exception {
        TextTokenizer t = TextTokenizer.load(goldenDir(), BOS);
        t.close();
        t.close();
        assertThatThrownBy(() -> t.encode("x", false))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
    }
}
