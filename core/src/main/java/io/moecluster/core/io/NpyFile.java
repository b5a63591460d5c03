package io.moecluster.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads and writes 2-D little-endian float32 NumPy {@code .npy} files (format 1.0), as numpy.load expects. */
public final class NpyFile {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order':\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,?\\s*\\)");

    private NpyFile() {
    }

    public static void writeF32(Path file, float[][] rows) throws IOException {
        int cols = rows.length == 0 ? 0 : rows[0].length;
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + rows.length + ", " + cols + "), }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
        int pad = (64 - unpadded % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(MAGIC.length + 4 + header.length() + rows.length * cols * 4)
                .order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.US_ASCII));
        for (float[] row : rows) {
            if (row.length != cols) {
                throw new IllegalArgumentException("ragged rows: " + row.length + " vs " + cols);
            }
            for (float f : row) {
                buf.putFloat(f);
            }
        }
        Files.write(file, buf.array());
    }

    public static float[][] readF32(Path file) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.remaining() < 10) {
            throw new IOException(file + ": too short for .npy");
        }
        for (byte b : MAGIC) {
            if (buf.get() != b) {
                throw new IOException(file + ": not a .npy file (bad magic)");
            }
        }
        int major = buf.get();
        buf.get();
        int headerLen = major == 1 ? buf.getShort() & 0xffff : buf.getInt();
        if (headerLen < 0 || headerLen > buf.remaining()) {
            throw new IOException(file + ": bad header length " + headerLen);
        }
        byte[] h = new byte[headerLen];
        buf.get(h);
        String header = new String(h, StandardCharsets.US_ASCII);
        Matcher d = DESCR.matcher(header);
        Matcher f = FORTRAN.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !d.group(1).equals("<f4") || !f.find() || f.group(1).equals("True") || !s.find()) {
            throw new IOException(file + ": expected a C-order 2-D <f4 array, header " + header.trim());
        }
        int rows = Integer.parseInt(s.group(1));
        int cols = Integer.parseInt(s.group(2));
        if ((long) rows * cols * 4 != buf.remaining()) {
            throw new IOException(file + ": " + buf.remaining() + " data bytes for shape (" + rows + ", " + cols + ")");
        }
        float[][] out = new float[rows][cols];
        for (float[] row : out) {
            for (int c = 0; c < cols; c++) {
                row[c] = buf.getFloat();
            }
        }
        return out;
    }
}
