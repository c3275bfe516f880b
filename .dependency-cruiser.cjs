// The direction of dependencies (run by `npm run lint`, and so by `npm test` and CI):
//   components/shared/   neutral code both sides use (ACME, DNS wire format): imports neither side
//   server-bootstrap/    the box: its daemon and what renders files for it; never the Pulumi side
//   components/          the Pulumi side (components, config, planners); may render box files
//   infra/               the program, the CLI, the local internet; anything but tests
//   test/                anything
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "product-code-imports-no-test-code",
      comment: "components/, server-bootstrap/ and infra/ ship; test/ does not.",
      severity: "error",
      from: { path: "^(components|server-bootstrap|infra)/" },
      to: { path: "^test/" },
    },
    {
      name: "shared-code-is-neutral",
      comment: "components/shared/ is used by the Pulumi side and by the box, so it imports neither (nor Pulumi).",
      severity: "error",
      from: { path: "^components/shared/" },
      to: { path: "^(components/(?!shared/)|server-bootstrap/|infra/)|node_modules/@pulumi/" },
    },
    {
      name: "the-box-imports-no-pulumi-side",
      comment:
        "server-bootstrap/ runs on (or renders for) the box: it may use components/shared/, never the rest of components/ or infra/.",
      severity: "error",
      from: { path: "^server-bootstrap/" },
      to: { path: "^(components/(?!shared/)|infra/)" },
    },
    {
      name: "the-daemon-imports-no-pulumi",
      comment: "maild is bundled for the box: no Pulumi SDK and no deployment renderers inside it.",
      severity: "error",
      from: { path: "^server-bootstrap/maild/" },
      to: { path: "^server-bootstrap/(install|systemd|dovecot|cloud-init)|node_modules/@pulumi/" },
    },
    {
      name: "components-import-no-program",
      comment: "The component library is imported by other programs: it cannot depend on this program, its CLI or the local internet.",
      severity: "error",
      from: { path: "^components/" },
      to: { path: "^infra/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|node_modules)/" },
  },
};
