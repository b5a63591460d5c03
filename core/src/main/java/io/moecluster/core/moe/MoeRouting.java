package io.moecluster.core.moe;

import java.util.Arrays;

/**
 * The router's decision for one step: for each token its top-k experts (ascending expert id, the
 * order in which contributions are summed) and weights, and the tokens grouped per expert so each
 * expert runs once over a contiguous block of rows. Arrays are sized once for the largest step.
 *
 * <p>Grouped row {@code r} holds token {@link #rowToken(int)}; expert {@code e} owns grouped rows
 * {@code [expertOffset(e), expertOffset(e) + expertCount(e))}; a token's {@code j}-th selection
 * reads its result from grouped row {@link #slotRow(int, int)}.
 */
public final class MoeRouting {
    private final int numExperts;
    private final int topK;
    private final int[] experts;
    private final float[] weights;
    private final int[] slotRow;
    private final int[] rowToken;
    private final int[] expertCount;
    private final int[] expertOffset;
    private int tokens;

    public MoeRouting(int maxTokens, int numExperts, int topK) {
        this.numExperts = numExperts;
        this.topK = topK;
        this.experts = new int[maxTokens * topK];
        this.weights = new float[maxTokens * topK];
        this.slotRow = new int[maxTokens * topK];
        this.rowToken = new int[maxTokens * topK];
        this.expertCount = new int[numExperts];
        this.expertOffset = new int[numExperts + 1];
    }

    public int tokens() {
        return tokens;
    }

    public int topK() {
        return topK;
    }

    public int numExperts() {
        return numExperts;
    }

    public int maxTokens() {
        return experts.length / topK;
    }

    public int expert(int token, int j) {
        return experts[token * topK + j];
    }

    public float weight(int token, int j) {
        return weights[token * topK + j];
    }

    public int slotRow(int token, int j) {
        return slotRow[token * topK + j];
    }

    public int rowToken(int row) {
        return rowToken[row];
    }

    public int expertCount(int expert) {
        return expertCount[expert];
    }

    public int expertOffset(int expert) {
        return expertOffset[expert];
    }

    /** Total grouped rows: tokens × k. */
    public int rows() {
        return tokens * topK;
    }

    /** Sets token {@code t}'s selections; {@code ids} need not be sorted. */
    void set(int token, int[] ids, float[] w) {
        int base = token * topK;
        for (int j = 0; j < topK; j++) {
            experts[base + j] = ids[j];
            weights[base + j] = w[j];
        }
        // Insertion sort by expert id: k is tiny, and the combine order must be by expert id.
        for (int j = 1; j < topK; j++) {
            int e = experts[base + j];
            float x = weights[base + j];
            int i = j - 1;
            while (i >= 0 && experts[base + i] > e) {
                experts[base + i + 1] = experts[base + i];
                weights[base + i + 1] = weights[base + i];
                i--;
            }
            experts[base + i + 1] = e;
            weights[base + i + 1] = x;
        }
    }

    /** Groups tokens by expert once every token's selections are set; token order is kept within an expert. */
    void group(int tokenCount) {
        this.tokens = tokenCount;
        Arrays.fill(expertCount, 0);
        int n = tokenCount * topK;
        for (int i = 0; i < n; i++) {
            expertCount[experts[i]]++;
        }
        expertOffset[0] = 0;
        for (int e = 0; e < numExperts; e++) {
            expertOffset[e + 1] = expertOffset[e] + expertCount[e];
        }
        int[] fill = expertCount; // reuse as a cursor, then restore
        for (int e = numExperts - 1; e >= 0; e--) {
            fill[e] = expertOffset[e];
        }
        for (int i = 0; i < n; i++) {
            int e = experts[i];
            int row = fill[e]++;
            rowToken[row] = i / topK;
            slotRow[i] = row;
        }
        for (int e = 0; e < numExperts; e++) {
            expertCount[e] = expertOffset[e + 1] - expertOffset[e];
        }
    }
}
