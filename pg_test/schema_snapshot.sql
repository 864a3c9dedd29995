-- Every member object of the pgops extension with a digest of its definition and privileges.
-- An upgraded installation must produce exactly the rows a fresh CREATE EXTENSION produces.
SELECT pg_describe_object(d.classid, d.objid, 0) || ' ' || coalesce(
  CASE d.classid
    WHEN 'pg_catalog.pg_proc'::regclass THEN
      (SELECT md5(pg_get_functiondef(p.oid) || coalesce(p.proacl::text, '')) FROM pg_proc p WHERE p.oid = d.objid)
    WHEN 'pg_catalog.pg_class'::regclass THEN
      (SELECT md5(c.relkind::text || coalesce(c.relacl::text, '')
                  || CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END
                  || coalesce((SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':'
                                                 || a.attnotnull || ':' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
                                                 ',' ORDER BY a.attnum)
                               FROM pg_attribute a
                               LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                  || coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ',' ORDER BY k.conname)
                               FROM pg_constraint k WHERE k.conrelid = c.oid), ''))
       FROM pg_class c WHERE c.oid = d.objid)
    WHEN 'pg_catalog.pg_namespace'::regclass THEN
      (SELECT md5(coalesce(n.nspacl::text, '')) FROM pg_namespace n WHERE n.oid = d.objid)
  END, '')
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'pgops'
UNION ALL
SELECT 'extension config ' || coalesce(array_to_string(extconfig::regclass[], ','), '') FROM pg_extension WHERE extname = 'pgops'
ORDER BY 1;
