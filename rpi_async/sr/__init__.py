"""SR templates as data, one renderer, and readable text of the result.

Modules: ``content`` (the row language), ``concepts`` (coded concepts), ``valuesets``
(CID membership), ``tid1204_1007``, ``tid900x``, ``tid9007``, ``tid9000``, ``tid3802``
(the templates), ``registry`` (templates per SOP class), ``render`` (record -> response
identifier as a Dataset), ``render_bytes`` (the same identifier straight to its encoding),
``wire`` (data elements as bytes), ``dsbuild`` (cheap pydicom objects), ``text``
(identifier -> text).

Where the record's facts go (``store.model.Fact``; "filter" means only facts whose
``code`` is a member of the CID render; SRT codes count as their SCT equivalents)::

  Section          Template rows                               Fact fields used
  ---------------  ------------------------------------------  --------------------------
  (patient)        Subject Age (TID 1007), all root templates  birth date + observation
  GYNECOLOGICAL    TID 9001 in 9000 (and 9007, see tid9007):   concept = the row's concept
                   one attribute fact per row, by concept:     number+unit (ages in a,
                   111518 111519 111520 111521 111522 111523   counts in 1); 111521 Extent
                   11977-6 11639-2 11637-6 11636-8 111593      = modifier; 11955-2 date =
                   11996-6 11612-9 33065-4 (counts),           start; 111543 code + number
                   11955-2, 111543, 364320009, 111391, 111534  (weeks); others code
  MEDICATION       9007 TID 9002 (10160-0/111516), no filter;  code, start, end, ongoing,
                   3802 History of Medication use              modifier = status (CID 3773)
                                                               or route (CID 11), text =
                                                               dosage
  HORMONE          9000 TID 9002, filter CID 6080              code, start, end, ongoing,
  SUBSTANCE        9007 TID 9002 (111545/111546), no filter    modifier = route (CID 11),
  ENVIRONMENT      9007 TID 9002 (111547/111548), no filter    site, laterality,
                                                               text = brand name
  PROCEDURE        9000 TID 9003 filter CID 6083; 9007 all     code, modifier, laterality,
                                                               start = procedure date-time,
                                                               number = occurrences, result
  PROBLEM          9000 TID 9004 filter CID 6055; 9007 all     code, start = onset, end =
                                                               resolution, laterality,
                                                               site, text = comment
  RISK_FACTOR      9000 TID 9005 filter CID 6081; 9007 filter  code, modifier = family
                   CID 6087;                                   member (INFERRED FROM),
                   3802 problem list: concern, filter 3756     number = age at occurrence,
                                                               text = comment; 3802: start
                                                               = noted, end = resolved
  CARDIAC_CONCERN  3802 problem list, one row per concern      code, modifier = therapy,
                   code: 161445009 161501007 414416008         result = stage (kidney),
                   44808001|698247007 399211009 275552000      start, end, text
                   (other codes are not rendered)
  SOCIAL           3802 Social History: attribute facts        code (e.g. CID 3724)
                   365981007 (smoking), 228366006 (drugs)
  SURGICAL         3802 Past Surgical History (TID 3830)       code, start, text, result
  DIAGNOSTIC_TEST  3802 Relevant Diagnostic Tests (TID 3830)   code, start, text, result
  LAB              3802 Relevant Diagnostic Tests: attribute   number + unit (default
                   facts 2086-7 (HDL), 2089-1 (LDL)            mg/dL)
  FAMILY_HISTORY   3802 History of family member diseases      code, modifier = relationship
                                                               (CID 7451)
  DEVICE           3802 History of medical device use          code, start, end, text

Laterality (PROCEDURE, PROBLEM, and the route of a medication) is rendered in the row's
group: TID 9007 and TID 9002 as CID 244 (``Fact.general_laterality``: Right breast ->
Right), TID 9000 as CID 6022 (``Fact.breast_laterality``: Right -> Right breast). NUM values
are stored in their row's units (``store.units``); Subject Age is in years, months or days
(``sr.age``, CID 7456). A sub-template used as the root renders its mandatory row 2 as
(260413007, SCT, "None") when the record has nothing for it (``Row.when_empty``).

A value set that does not filter documents the standard's constraint only. Rows whose
content could not be confirmed against the current PS3.16 say so in their ``unconfirmed``
field; ``Template.unconfirmed`` lists them.
"""
