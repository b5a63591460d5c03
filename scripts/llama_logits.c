// Logits of llama.cpp for given token ids, one row per position, as float32 .npy: the check that a
// GGUF written by scripts/safetensors_to_gguf.py computes what our engine (and the golden
// references) compute. Compiled against a llama.cpp build by scripts/check-gguf-logits.sh.
// Usage: llama_logits MODEL.gguf 1,72,101 OUT.npy
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level >= GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKEN,TOKEN,... OUT.npy\n", argv[0]);
        return 2;
    }
    int n = 1;
    for (const char * p = argv[2]; *p; p++) {
        n += *p == ',';
    }
    llama_token * tokens = malloc(sizeof(llama_token) * n);
    char * list = strdup(argv[2]);
    int i = 0;
    for (char * t = strtok(list, ","); t && i < n; t = strtok(NULL, ",")) {
        tokens[i++] = atoi(t);
    }
    n = i;

    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "llama_logits: cannot load %s\n", argv[1]);
        return 1;
    }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n < 64 ? 64 : n;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "llama_logits: cannot make a context\n");
        return 1;
    }
    struct llama_batch batch = llama_batch_init(n, 0, 1);
    for (i = 0; i < n; i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_logits: llama_decode failed\n");
        return 1;
    }
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    FILE * f = fopen(argv[3], "wb");
    if (!f) {
        fprintf(stderr, "llama_logits: cannot write %s\n", argv[3]);
        return 1;
    }
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, vocab);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned short hlen = (unsigned short) (len + pad + 1);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, len, f);
    for (i = 0; i < pad; i++) {
        fputc(' ', f);
    }
    fputc('\n', f);
    for (i = 0; i < n; i++) {
        fwrite(llama_get_logits_ith(ctx, i), sizeof(float), vocab, f);
    }
    fclose(f);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    free(list);
    free(tokens);
    return 0;
}
