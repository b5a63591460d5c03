package io.moecluster.router.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moecluster.core.model.Architecture;
import io.moecluster.core.model.Preset;
import io.moecluster.core.model.RandomModelGenerator;
import io.moecluster.core.safetensors.DType;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Templates written for these tests with the constructs of Mixtral's, Qwen2's and DeepSeek-V3's
 * published chat templates (and one exercising the Jinja2 and Python semantics templates lean on),
 * rendered here and compared with what Python's Jinja2 renders in transformers' environment:
 * {@code chat-templates/expected.json}, written by {@code render_expected.py} beside it.
 */
class ChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    record Case(String name, String template, Map<String, Object> context, Map<String, String> expected) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() throws Exception {
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/chat-templates/expected.json")) {
            List<Map<String, Object>> raw = JSON.readValue(in, new TypeReference<>() { });
            return raw.stream().map(c -> new Case((String) c.get("name"), (String) c.get("template"),
                    cast(c.get("context")), cast(c.get("expected"))));
        }
    }

    @SuppressWarnings("unchecked")
    static <T> T cast(Object o) {
        return (T) o;
    }

    static String resource(String name) throws Exception {
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/chat-templates/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersAsJinja2Does(Case c) throws Exception {
        Map<String, Object> context = new HashMap<>(c.context());
        List<Map<String, Object>> messages = cast(context.remove("messages"));
        boolean addGenerationPrompt = (Boolean) context.remove("add_generation_prompt");
        ChatTemplate template = ChatTemplate.of(resource(c.template()), Map.of());
        if (c.expected().containsKey("error")) {
            assertThatThrownBy(() -> template.render(messages, addGenerationPrompt, context))
                    .isInstanceOfSatisfying(ChatTemplateException.class, e -> {
                        assertThat(e.getMessage()).isEqualTo(c.expected().get("error"));
                        assertThat(e.templateBroken()).isFalse();
                    });
        } else {
            assertThat(template.render(messages, addGenerationPrompt, context)).isEqualTo(c.expected().get("output"));
        }
    }

    @Test
    void specialTokensAndTheTemplateComeFromTokenizerConfigAndAFileOverrides() throws Exception {
        Files.writeString(tmp.resolve("tokenizer_config.json"), """
                {"bos_token": {"content": "<s>", "special": true}, "eos_token": "</s>", "unk_token": null,
                 "additional_special_tokens": ["[TOOL]"],
                 "chat_template": [{"name": "tool_use", "template": "tools"},
                                   {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}{{ additional_special_tokens[0] }}"}]}
                """);
        ChatTemplate t = ChatTemplate.load(tmp, null);
        assertThat(t.specialToken("bos_token")).isEqualTo("<s>");
        assertThat(t.specialToken("unk_token")).isNull();
        assertThat(t.render(List.of(Map.of("role", "user", "content", "hi")), true, Map.of())).isEqualTo("<s>hi</s>[TOOL]");
        Files.writeString(tmp.resolve("chat_template.jinja"), "file:{{ messages|length }}\n");
        assertThat(ChatTemplate.load(tmp, null).render(List.of(), false, Map.of())).isEqualTo("file:0");
        Path override = tmp.resolve("override.jinja");
        Files.writeString(override, "{% if add_generation_prompt %}override{% endif %}");
        assertThat(ChatTemplate.load(tmp, override).render(List.of(), true, Map.of())).isEqualTo("override");
        assertThat(ChatTemplate.load(tmp, override).origin()).isEqualTo(override.toString());
    }

    @Test
    void messagesAreTextNeverTemplateCode() throws Exception {
        ChatTemplate t = ChatTemplate.of("{% for m in messages %}[{{ m.content }}]{% endfor %}", Map.of());
        String hostile = "{{ 7 * 7 }} {% for x in [1, 2] %}{{ x }}{% endfor %} {{ raise_exception('boom') }}";
        assertThat(t.render(List.of(Map.of("role", "user", "content", hostile)), true, Map.of()))
                .isEqualTo("[" + hostile + "]");
    }

    @Test
    void aModelWithoutATemplateAndABrokenTemplateSaySo() throws Exception {
        ChatTemplate none = ChatTemplate.load(tmp, null);
        assertThat(none.isPresent()).isFalse();
        assertThatThrownBy(() -> none.render(List.of(), true, Map.of())).hasMessageContaining("no chat template")
                .hasMessageContaining("--chat-template");
        ChatTemplate broken = ChatTemplate.of("{% for m in messages %}{{ m.content ", Map.of());
        assertThatThrownBy(() -> broken.render(List.of(Map.of("role", "user", "content", "x")), true, Map.of()))
                .isInstanceOfSatisfying(ChatTemplateException.class, e -> assertThat(e.templateBroken()).isTrue());
    }

    @Test
    void theRandomModelGeneratorWritesATemplateTheDemoCanChatWith() throws Exception {
        RandomModelGenerator.generate(Architecture.MIXTRAL, Preset.TINY, DType.F32, 1, tmp);
        ChatTemplate t = ChatTemplate.load(tmp, null);
        assertThat(t.isPresent()).isTrue();
        String prompt = t.render(List.of(Map.of("role", "system", "content", "Be brief."),
                Map.of("role", "user", "content", "Hi"), Map.of("role", "assistant", "content", "Hello"),
                Map.of("role", "user", "content", "Bye")), true, Map.of());
        assertThat(prompt).isEqualTo("<s>[SYS] Be brief. [/SYS][INST] Hi [/INST]Hello</s>[INST] Bye [/INST]");
        assertThatThrownBy(() -> t.render(List.of(Map.of("role", "robot", "content", "x")), true, Map.of()))
                .hasMessage("Unknown role: robot");
    }

    @Test
    void rewritesOnlyExpressionsAndParenthesisesUnaryNot() {
        assertThat(JinjaCompat.rewrite("not x is defined {% if not x is defined and y %}{{ a if not b else c }}{% endif %}"))
                .isEqualTo("not x is defined {% if not (x is defined) and y %}{{ a if not (b) else c }}{% endif %}");
        assertThat(JinjaCompat.rewrite("{{ x is not none }}{{ 'a' not in s }}{{ f(not a, b) }}"))
                .isEqualTo("{{ x is not none }}{{ 'a' not in s }}{{ f(not (a), b) }}");
        assertThat(JinjaCompat.rewrite("{%- for m in messages[::-1] -%}{{ m.content.split('x')[::-1][0] }}"))
                .isEqualTo("{%- for m in (messages|reverse|list) -%}{{ (m.content.split('x')|reverse|list)[0] }}");
        assertThat(JinjaCompat.rewrite("{# not x is y #}{% raw %}{{ not a == b }}{% endraw %}{{ '}}' }}"))
                .isEqualTo("{# not x is y #}{% raw %}{{ not a == b }}{% endraw %}{{ '}}' }}");
    }
}
