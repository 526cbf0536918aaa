        PERFORM nextval(@generation@);
