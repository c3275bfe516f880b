// XML from strangers (autodiscover requests, DMARC reports) parsed with fast-xml-parser, with no
// DTD at all. External entities already make fast-xml-parser 5.12 throw, and it caps internal
// entity expansion (src/xmlparser/OptionsBuilder.js: maxExpandedLength 100000); neither request
// nor report format has a DTD, so any DOCTYPE or ENTITY declaration is refused before parsing and
// entity expansion is left to the five predefined entities.
import { XMLParser, XMLValidator, type X2jOptions } from "fast-xml-parser";

export class UnsafeXmlError extends Error {}
export class MalformedXmlError extends Error {}

/** Parses `text` into plain objects; throws UnsafeXmlError for a DTD, MalformedXmlError for bad XML. */
export function parseUntrustedXml(text: string, options: Partial<X2jOptions> = {}): Record<string, unknown> {
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) throw new UnsafeXmlError("DOCTYPE and ENTITY declarations are not allowed");
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new MalformedXmlError(`not well-formed XML (${valid.err.msg}, line ${valid.err.line})`);
  return new XMLParser({ removeNSPrefix: true, processEntities: true, parseTagValue: false, trimValues: true, ...options }).parse(
    text,
  ) as Record<string, unknown>;
}
