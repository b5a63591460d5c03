package io.moecluster.cli;

import picocli.CommandLine;

final class VersionProvider implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
        String v = MoeCommand.class.getPackage().getImplementationVersion();
        return new String[] {"moe " + (v == null ? "development build" : v) + " (Java " + Runtime.version() + ")"};
    }
}
