//! The diesel schema, shared by both backends. Only types common to SQLite and
//! PostgreSQL appear here (text ids, `BigInt` fen, `Timestamp` in UTC, `Binary`).

diesel::table! {
    organizations (id) {
        id -> Text,
        kind -> Text,
        issuer_kind -> Nullable<Text>,
        provider_kind -> Nullable<Text>,
        name -> Text,
        uscc -> Text,
        uscc_whitelisted -> Bool,
        short_code -> Nullable<Text>,
        email -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        organization_id -> Text,
        username -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        role -> Text,
        password_hash -> Text,
        resident_id_hmac -> Nullable<Text>,
        resident_id_masked -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_hash -> Text,
        user_id -> Text,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    projects (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        tenderee_id -> Text,
        agency_id -> Text,
        bid_deadline -> Timestamp,
        bid_opening_at -> Timestamp,
        bid_validity_days -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sections (id) {
        id -> Text,
        project_id -> Text,
        code -> Text,
        name -> Text,
        bond_amount_fen -> BigInt,
        estimated_price_fen -> Nullable<BigInt>,
        awarded_enterprise_id -> Nullable<Text>,
        awarded_at -> Nullable<Timestamp>,
        contract_signed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    applications (id) {
        id -> Text,
        enterprise_id -> Text,
        section_id -> Text,
        issuer_id -> Text,
        kind -> Text,
        amount_fen -> BigInt,
        valid_from -> Timestamp,
        valid_until -> Timestamp,
        status -> Text,
        premium_fen -> Nullable<BigInt>,
        decline_reason -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        live -> Bool,
        attachment_count -> Integer,
    }
}

diesel::table! {
    issuer_certificates (id) {
        id -> Text,
        organization_id -> Text,
        fingerprint_sha256 -> Text,
        subject -> Text,
        serial -> Text,
        not_before -> Timestamp,
        not_after -> Timestamp,
        certificate_der -> Binary,
        encrypted_private_key -> Nullable<Binary>,
        created_at -> Timestamp,
        deactivated_at -> Nullable<Timestamp>,
        expiry_notice_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    trust_anchors (id) {
        id -> Text,
        name -> Text,
        fingerprint_sha256 -> Text,
        certificate_der -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    crls (id) {
        id -> Text,
        issuer_name -> Text,
        crl_der -> Binary,
        this_update -> Timestamp,
        next_update -> Nullable<Timestamp>,
        created_at -> Timestamp,
        source_url -> Nullable<Text>,
    }
}

diesel::table! {
    guarantees (id) {
        id -> Text,
        number -> Text,
        application_id -> Text,
        issuer_id -> Text,
        enterprise_id -> Text,
        section_id -> Text,
        status -> Text,
        claimed_from -> Nullable<Text>,
        amount_fen -> BigInt,
        valid_from -> Timestamp,
        valid_until -> Timestamp,
        current_version -> Integer,
        verification_code_hash -> Text,
        verification_code_sealed -> Binary,
        issued_at -> Timestamp,
        updated_at -> Timestamp,
        expiry_notice_at -> Nullable<Timestamp>,
        paid_fen -> BigInt,
    }
}

diesel::table! {
    guarantee_drafts (id) {
        id -> Text,
        application_id -> Text,
        guarantee_number -> Text,
        version -> Integer,
        document -> Binary,
        document_sha256 -> Text,
        verification_code_hash -> Text,
        verification_code_sealed -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    guarantee_versions (id) {
        id -> Text,
        guarantee_id -> Text,
        version -> Integer,
        document -> Binary,
        document_sha256 -> Text,
        signature -> Nullable<Binary>,
        signer_certificate_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    claims (id) {
        id -> Text,
        guarantee_id -> Text,
        reason_code -> Text,
        statement -> Text,
        amount_fen -> BigInt,
        status -> Text,
        filed_by -> Text,
        filed_at -> Timestamp,
        decide_by -> Timestamp,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
        attachment_count -> Integer,
        paid_fen -> Nullable<BigInt>,
        extend_to -> Nullable<Timestamp>,
    }
}

diesel::table! {
    credit_events (id) {
        id -> Text,
        subject_uscc -> Text,
        kind -> Text,
        positive -> Bool,
        amount_fen -> Nullable<BigInt>,
        reference -> Text,
        source -> Text,
        occurred_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        occurred_at -> Timestamp,
        actor_user_id -> Nullable<Text>,
        actor_organization_id -> Nullable<Text>,
        action -> Text,
        entity_kind -> Text,
        entity_id -> Text,
        from_state -> Nullable<Text>,
        to_state -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        last_seq -> BigInt,
        last_hash -> Text,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        to_address -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        digest_key -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (user_id, idempotency_key) {
        user_id -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        attempt -> Text,
        locked_until -> Timestamp,
        changed -> Bool,
        entity_kind -> Nullable<Text>,
        entity_id -> Nullable<Text>,
        entity_action -> Nullable<Text>,
        response_status -> Nullable<Integer>,
        response_content_type -> Nullable<Text>,
        response_sealed -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    guarantee_number_counters (issuer_id, issue_day) {
        issuer_id -> Text,
        issue_day -> Text,
        last_sequence -> Integer,
    }
}

diesel::table! {
    readiness_probe (id) {
        id -> Integer,
        probes -> BigInt,
    }
}

diesel::table! {
    trust_store_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    premium_terms (id) {
        id -> Text,
        issuer_id -> Text,
        version -> Integer,
        withdrawn -> Bool,
        rate_bp -> Nullable<Integer>,
        minimum_fen -> Nullable<BigInt>,
        maximum_bond_fen -> Nullable<BigInt>,
        turnaround_days -> Nullable<Integer>,
        note -> Nullable<Text>,
        published_at -> Timestamp,
        published_by -> Text,
    }
}

diesel::table! {
    matters (code) {
        code -> Text,
        position -> Integer,
        name_zh -> Text,
        name_en -> Text,
        legal_basis -> Text,
        scenario_zh -> Text,
        scenario_en -> Text,
        collecting_body_zh -> Text,
        collecting_body_en -> Text,
        typical_amount_fen -> BigInt,
        path -> Text,
        required_level -> Nullable<Text>,
        subject_kind -> Nullable<Text>,
        deposit_ceiling_fen -> Nullable<BigInt>,
        commitment_text -> Nullable<Text>,
        write_off_state -> Text,
        write_off_due_on -> Nullable<Date>,
        write_off_done_on -> Nullable<Date>,
        write_off_evidence -> Nullable<Text>,
        version -> Integer,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    matter_versions (id) {
        id -> Text,
        code -> Text,
        version -> Integer,
        content -> Text,
        changed_at -> Timestamp,
        changed_by -> Nullable<Text>,
    }
}

diesel::table! {
    record_categories (code) {
        code -> Text,
        position -> Integer,
        name_zh -> Text,
        name_en -> Text,
        dimension -> Text,
        polarity -> Text,
        points -> Integer,
        validity_days -> Integer,
        version -> Integer,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    record_category_versions (id) {
        id -> Text,
        code -> Text,
        version -> Integer,
        content -> Text,
        changed_at -> Timestamp,
        changed_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row: moved by triggers whenever a credential may have ended or changed
    /// (migration 46), read by every instance's watch (`services::credential_cache`).
    credential_epoch (id) {
        id -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    /// The credit office's figures over the archive, moved by triggers (migration 45).
    credit_tallies (id) {
        id -> BigInt,
        name -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    credit_subjects (id) {
        id -> Text,
        kind -> Text,
        subject_key -> Text,
        masked_id -> Text,
        name -> Text,
        organization_id -> Nullable<Text>,
        score_identity -> Integer,
        score_compliance -> Integer,
        score_public_interest -> Integer,
        score_history -> Integer,
        score -> Integer,
        level -> Text,
        level_since -> Timestamp,
        serious_dishonesty_count -> Integer,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    credit_records (id) {
        id -> Text,
        subject_id -> Text,
        category -> Text,
        dimension -> Text,
        polarity -> Text,
        points -> Integer,
        serious_dishonesty -> Bool,
        occurred_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        source_department -> Text,
        source_ref -> Text,
        note -> Nullable<Text>,
        cancels -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        recorded_at -> Timestamp,
        recorded_by -> Nullable<Text>,
        in_force -> Bool,
    }
}

diesel::table! {
    credit_level_changes (id) {
        id -> Text,
        subject_id -> Text,
        from_level -> Text,
        to_level -> Text,
        score -> Integer,
        cause_record_id -> Nullable<Text>,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    credit_looks (id) {
        id -> Text,
        subject_id -> Text,
        looked_by -> Text,
        organization_id -> Text,
        purpose -> Text,
        application_id -> Nullable<Text>,
        looked_at -> Timestamp,
    }
}

diesel::table! {
    credit_disputes (id) {
        id -> Text,
        record_id -> Text,
        subject_id -> Text,
        filed_by -> Text,
        reason -> Text,
        filed_at -> Timestamp,
        decide_by -> Timestamp,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_note -> Nullable<Text>,
        correction_record_id -> Nullable<Text>,
        kind -> Text,
    }
}

diesel::table! {
    credit_lines (subject_id) {
        subject_id -> Text,
        in_use_fen -> BigInt,
        defaults_open -> Integer,
        version -> Integer,
    }
}

diesel::table! {
    credit_line_matters (subject_id, matter) {
        subject_id -> Text,
        matter -> Text,
        in_use_fen -> BigInt,
    }
}

diesel::table! {
    credit_rights_codes (id) {
        id -> Text,
        subject_id -> Text,
        issued_to -> Text,
        provider_id -> Nullable<Text>,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        used_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    credit_waivers (id) {
        id -> Text,
        code_id -> Text,
        subject_id -> Text,
        provider_id -> Text,
        checked_by -> Text,
        matter -> Text,
        amount_fen -> BigInt,
        provider_ref -> Nullable<Text>,
        granted_at -> Timestamp,
        state -> Text,
        bill_fen -> Nullable<BigInt>,
        billed_at -> Nullable<Timestamp>,
        due_at -> Nullable<Timestamp>,
        settled_at -> Nullable<Timestamp>,
        paid_late -> Bool,
        record_id -> Nullable<Text>,
        version -> Integer,
    }
}

diesel::table! {
    issuer_credit_rules (issuer_id, level) {
        issuer_id -> Text,
        level -> Text,
        discount_percent -> Integer,
        manual_review -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (organization_id) {
        organization_id -> Text,
        url -> Text,
        secret_version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Text,
        organization_id -> Text,
        kind -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        event_id -> Text,
        attempted_at -> Timestamp,
        url -> Text,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
    }
}

diesel::table! {
    application_drafts (id) {
        id -> Text,
        enterprise_id -> Text,
        section_id -> Text,
        issuer_id -> Nullable<Text>,
        kind -> Nullable<Text>,
        note -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Reductions of a guarantee's amount awaiting, or past, the beneficiary's
    /// acceptance (migration 51).
    guarantee_reductions (id) {
        id -> Text,
        guarantee_id -> Text,
        version -> Integer,
        base_version -> Integer,
        amount_before_fen -> BigInt,
        amount_fen -> BigInt,
        reason -> Text,
        status -> Text,
        proposed_by -> Text,
        proposed_at -> Timestamp,
        document -> Nullable<Binary>,
        document_sha256 -> Nullable<Text>,
        signature -> Nullable<Binary>,
        signer_certificate_id -> Nullable<Text>,
        signed_at -> Nullable<Timestamp>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// Release and reduction letters with the exchange's time-stamp tokens
    /// (migration 51).
    guarantee_letters (id) {
        id -> Text,
        guarantee_id -> Text,
        kind -> Text,
        reduction_id -> Nullable<Text>,
        document -> Binary,
        document_sha256 -> Text,
        timestamp_token -> Binary,
        created_at -> Timestamp,
    }
}

diesel::joinable!(guarantee_reductions -> guarantees (guarantee_id));
diesel::joinable!(guarantee_letters -> guarantees (guarantee_id));
diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(sections -> projects (project_id));
diesel::joinable!(application_drafts -> sections (section_id));
diesel::joinable!(applications -> sections (section_id));
diesel::joinable!(guarantees -> sections (section_id));
diesel::joinable!(guarantee_versions -> guarantees (guarantee_id));
diesel::joinable!(claims -> guarantees (guarantee_id));
diesel::joinable!(issuer_certificates -> organizations (organization_id));
diesel::joinable!(premium_terms -> organizations (issuer_id));
diesel::joinable!(matter_versions -> matters (code));
diesel::joinable!(record_category_versions -> record_categories (code));
diesel::table! {
    credit_imports (id) {
        id -> Text,
        file_sha256 -> Text,
        format -> Text,
        last_line -> BigInt,
        lines_stored -> BigInt,
        lines_rejected -> BigInt,
        status -> Text,
        started_by -> Nullable<Text>,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(credit_records -> credit_subjects (subject_id));
diesel::joinable!(credit_records -> record_categories (category));
diesel::joinable!(credit_level_changes -> credit_subjects (subject_id));
diesel::joinable!(credit_looks -> credit_subjects (subject_id));
diesel::joinable!(credit_disputes -> credit_records (record_id));
diesel::joinable!(credit_looks -> organizations (organization_id));
diesel::joinable!(credit_lines -> credit_subjects (subject_id));
diesel::joinable!(credit_waivers -> credit_subjects (subject_id));
diesel::joinable!(credit_waivers -> organizations (provider_id));
diesel::joinable!(credit_waivers -> matters (matter));
diesel::joinable!(webhook_events -> organizations (organization_id));
diesel::joinable!(webhook_attempts -> webhook_events (event_id));

diesel::table! {
    /// The bytes of attachments on PostgreSQL, by their SHA-256 (migration 48); empty
    /// on SQLite, where they are files in the data directory.
    attachment_blobs (sha256) {
        sha256 -> Text,
        size_bytes -> BigInt,
        content -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// An application's documents and a claim's evidence (migration 48).
    attachments (id) {
        id -> Text,
        parent_kind -> Text,
        parent_id -> Text,
        kind -> Text,
        file_name -> Text,
        media_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        uploaded_by -> Text,
        uploader_organization_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(attachments -> organizations (uploader_organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    guarantee_number_counters,
    trust_store_version,
    readiness_probe,
    organizations,
    users,
    api_tokens,
    sessions,
    projects,
    sections,
    applications,
    issuer_certificates,
    trust_anchors,
    crls,
    guarantees,
    guarantee_drafts,
    guarantee_versions,
    claims,
    credit_events,
    audit_log,
    audit_head,
    mail_outbox,
    idempotency_keys,
    premium_terms,
    matters,
    matter_versions,
    record_categories,
    record_category_versions,
    credit_subjects,
    credit_tallies,
    credential_epoch,
    credit_records,
    credit_level_changes,
    credit_looks,
    credit_disputes,
    credit_lines,
    credit_line_matters,
    credit_rights_codes,
    credit_waivers,
    issuer_credit_rules,
    credit_imports,
    webhook_endpoints,
    webhook_events,
    webhook_attempts,
    attachment_blobs,
    attachments,
    application_drafts,
    guarantee_reductions,
    guarantee_letters,
);
